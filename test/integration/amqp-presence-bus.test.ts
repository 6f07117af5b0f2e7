import { AmqpPresenceBus, presenceConnectionName } from "../../src/adapters/amqp/amqp-presence-bus.js";
import { silentLogger } from "../../src/core/ports/logger.js";
import { presenceBusContract } from "../contract/presence-bus.contract.js";
import { closeConnectionsNamed, createRabbitVhost } from "../support/rabbit-vhost.js";
import { uniqueId } from "../support/test-gateway.js";

presenceBusContract("AmqpPresenceBus", async () => {
  const vhost = await createRabbitVhost("presence-bus");
  const prefix = uniqueId("pb");
  return {
    bus: (node) => new AmqpPresenceBus({ urls: [vhost.url], nodeId: `${prefix}-${node}`, logger: silentLogger, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } }),
    // Both of its connections: the one that publishes (`-publish`) and the one that listens.
    dropConnection: async (_bus, node) => {
      const name = presenceConnectionName(`${prefix}-${node}`);
      await Promise.all([closeConnectionsNamed(`${name}-publish`), closeConnectionsNamed(name)]);
    },
    // It reconnects by itself.
    restore: async () => {},
    cleanup: () => vhost.drop(),
  };
});
