import { MemoryBroker } from "../../src/adapters/memory/memory-broker.js";
import { type BrokerFixture, brokerContract, CONTRACT_LIVE_NAMESPACES } from "./broker.contract.js";

brokerContract("MemoryBroker", async (): Promise<BrokerFixture> => {
  const broker = new MemoryBroker({ liveNamespaces: CONTRACT_LIVE_NAMESPACES });
  return {
    broker,
    async publishRaw(exchange, routingKey, body, props) {
      const bytes = typeof body === "string" ? body : new Uint8Array(body);
      if (exchange === "live") broker.deliverLive(routingKey, bytes, props);
      else if (exchange === "control") broker.deliverControl(bytes, props);
      else broker.deliverEvent(routingKey, bytes, props);
    },
    async simulateOutage() {
      broker.simulateOutage();
    },
    async restore() {
      broker.restore();
    },
    async deadLetters() {
      return broker.deadLetters.map(({ routingKey, reason }) => ({ routingKey, reason }));
    },
    async serverBindings() {
      return broker.boundPrefixes();
    },
    async cleanup() {
      await broker.stop();
    },
  };
});
