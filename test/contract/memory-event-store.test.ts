import { MemoryEventStore } from "../../src/adapters/memory/memory-event-store.js";
import { type EventStoreFixture, eventStoreContract } from "./event-store.contract.js";

eventStoreContract("MemoryEventStore", async (): Promise<EventStoreFixture> => {
  const store = new MemoryEventStore();
  await store.start();
  return {
    store,
    async reopen() {
      await store.stop();
      await store.start();
      return store;
    },
    async cleanup() {
      await store.stop();
    },
  };
});
