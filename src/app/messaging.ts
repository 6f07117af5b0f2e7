import type { Config } from "../config/index.js";
import type { NamespaceRegistry } from "../core/namespaces.js";
import type { Broker } from "../core/ports/broker.js";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Metrics } from "../core/ports/metrics.js";
import type { PersistQueue } from "../core/ports/persist-queue.js";
import type { PresenceBus } from "../core/ports/presence-bus.js";
import { AmqpPresenceBus } from "../adapters/amqp/amqp-presence-bus.js";
import { MemoryPresenceBus } from "../adapters/memory/memory-presence-bus.js";
import { AmqpBroker } from "../adapters/amqp/amqp-broker.js";
import { AmqpPersistQueue } from "../adapters/amqp/amqp-persist-queue.js";
import { MemoryBroker } from "../adapters/memory/memory-broker.js";
import { MemoryPersistBacklog } from "../adapters/memory/memory-persist-backlog.js";
import { MemoryPersistQueue } from "../adapters/memory/memory-persist-queue.js";

export interface Messaging {
  /** The gateway's broker: node queue, bindings, client publishes. */
  readonly broker: Broker;
  /** The worker's input and live publisher (made only for the worker role). */
  persistQueue(): PersistQueue;
  /** Presence between gateway nodes (made only for the gateway role). */
  presenceBus(): PresenceBus;
}

/**
 * RabbitMQ when RABBITMQ_URL is set (every connection rotating over its
 * addresses); otherwise the embedded single-process
 * pair, in which the memory broker's events exchange feeds the memory persist
 * queue and the worker's live publishes come back through the memory broker.
 */
export function createMessaging(deps: { config: Config; namespaces: NamespaceRegistry; logger: Logger; clock: Clock; metrics: Metrics }): Messaging {
  const { config, namespaces, logger, clock, metrics } = deps;
  const durableNamespaces = namespaces.all().filter((policy) => policy.durable).map((policy) => policy.name);
  const batching = { maxBatch: config.durable.persistMaxBatch, maxBatchWaitMs: config.durable.persistMaxBatchWaitMs };
  if (config.rabbitmqUrls.length > 0) {
    const connection = { urls: config.rabbitmqUrls, nodeId: config.nodeId, clock, confirmTimeoutMs: config.confirmTimeoutMs };
    return {
      broker: new AmqpBroker({
        ...connection,
        liveNamespaces: namespaces.liveNamespaces(),
        logger: logger.child({ component: "amqp" }),
        nodeQueue: config.nodeQueue,
        onConnectionStateChange: (connected) => metrics.brokerConnected(connected),
        onReconnect: () => metrics.brokerReconnected(),
      }),
      persistQueue: () => new AmqpPersistQueue({ ...connection, durableNamespaces, logger: logger.child({ component: "persist-queue" }), ...batching }),
      presenceBus: () =>
        new AmqpPresenceBus({
          ...connection,
          logger,
          deploymentId: config.deploymentId,
          onDropped: (reason) => metrics.presenceMessageDropped(reason),
        }),
    };
  }
  const backlog = new MemoryPersistBacklog({ durableNamespaces, logger, clock });
  const broker = new MemoryBroker({ liveNamespaces: namespaces.liveNamespaces(), onEventsPublish: (message) => backlog.accept(message) });
  return {
    broker,
    persistQueue: () =>
      new MemoryPersistQueue({
        durableNamespaces,
        backlog,
        deliverLive: (routingKey, body, properties) => broker.deliverLive(routingKey, body, properties),
        logger,
        clock,
        ...batching,
      }),
    presenceBus: () => new MemoryPresenceBus(),
  };
}
