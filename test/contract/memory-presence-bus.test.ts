import { MemoryPresenceBus, MemoryPresenceNetwork } from "../../src/adapters/memory/memory-presence-bus.js";
import { presenceBusContract } from "./presence-bus.contract.js";

presenceBusContract("MemoryPresenceBus", async () => {
  const network = new MemoryPresenceNetwork();
  return {
    bus: () => new MemoryPresenceBus(network),
    dropConnection: async (bus) => (bus as MemoryPresenceBus).disconnect(),
    restore: async (bus) => (bus as MemoryPresenceBus).reconnect(),
    cleanup: async () => {},
  };
});
