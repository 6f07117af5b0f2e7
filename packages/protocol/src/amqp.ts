/**
 * The names of the AMQP topology of docs/protocol.md §3: wire facts shared by
 * the gateway (which declares the topology, src/adapters/amqp/topology.ts)
 * and the publisher SDK. Every exchange and queue name is spelled here and
 * nowhere else.
 */
export const AmqpNames = {
  /** Durable topic exchange backends publish to (`namespace.id.type`). */
  eventsExchange: "sobranie.events",
  /** Durable topic exchange gateways bind their node queues to. */
  liveExchange: "sobranie.live",
  /** Where undeliverable or invalid events go, fanned out to `deadQueue`. */
  deadLetterExchange: "sobranie.dlx",
  deadQueue: "sobranie.dead",
  /**
   * Where `npm run upgrade-broker` keeps dead letters while it replaces a
   * classic `sobranie.dead` with a quorum one; gone once the upgrade is done.
   */
  deadQueueUpgrading: "sobranie.dead.upgrading",
  /**
   * Fanout exchange `npm run upgrade-broker` moves dead letters through: bound
   * to exactly the queue being filled, so a moved message keeps its original
   * routing key (the default exchange would replace it with the queue name).
   */
  deadLetterMoveExchange: "sobranie.dead.move",
  /**
   * Durable fanout exchange of control commands (disconnect, unsubscribe,
   * revoke; docs/protocol.md §11): every node queue is bound to it.
   */
  controlExchange: "sobranie.control",
  /**
   * Presence traffic between the nodes of a deployment without DEPLOYMENT_ID;
   * one with it uses `sobranie.presence.<DEPLOYMENT_ID>` (presenceExchangeName).
   */
  presenceExchange: "sobranie.presence",
  /** Per-node queue name prefix: `sobranie.node.<nodeId>.<connection>`. */
  nodeQueuePrefix: "sobranie.node.",
  /** `clientProperties.connection_name` prefix, so operators and tests can find a node's connection. */
  connectionNamePrefix: "sobranie-gateway-",
  /** The worker's quorum queue of durable-namespace events (docs/protocol.md §3). */
  persistQueue: "sobranie.persist",
  /** `connection_name` prefix of a worker's connection: `sobranie-worker-<nodeId>`. */
  workerConnectionNamePrefix: "sobranie-worker-",
  /** `connection_name` of `npm run upgrade-broker`. */
  upgradeConnectionName: "sobranie-upgrade-broker",
} as const;

/** Headers the gateway writes on dead-lettered messages and on its own publishes. */
export const AmqpHeaders = {
  deadReason: "x-sobranie-reason",
  deadMessage: "x-sobranie-message",
  deadNode: "x-sobranie-node",
  /** The queue the message was taken from (a node queue's name ends in its connection's suffix). */
  deadQueue: "x-sobranie-queue",
  /** Publish time in ms; the AMQP `timestamp` property only holds seconds. */
  timestampMs: "x-sobranie-ts-ms",
  /** DEPLOYMENT_ID of the node that sent a presence message; absent when it has none. */
  deployment: "x-sobranie-deployment",
} as const;

const MS_PER_SECOND = 1_000;

/** The AMQP basic properties of an event, in amqplib's `Options.Publish` spelling (this package depends on no AMQP client). */
export interface EventProperties {
  readonly persistent: boolean;
  readonly contentType: "application/json";
  readonly messageId: string;
  /** Whole seconds since the epoch. */
  readonly timestamp: number;
  readonly headers: { readonly [AmqpHeaders.timestampMs]: number };
}

/**
 * The AMQP properties of every event this codebase publishes: JSON, the
 * event id as `message_id` (what consumers de-duplicate on), and the publish
 * time twice: the AMQP `timestamp` (whole seconds, by the spec) for other
 * tools, and `x-sobranie-ts-ms` for our delivery-latency measurement.
 */
export function eventProperties(event: { messageId: string; timestampMs: number; persistent: boolean }): EventProperties {
  return {
    persistent: event.persistent,
    contentType: "application/json",
    messageId: event.messageId,
    timestamp: Math.floor(event.timestampMs / MS_PER_SECOND),
    headers: { [AmqpHeaders.timestampMs]: event.timestampMs },
  };
}

