import type { Channel, Options } from "amqplib";

/**
 * The AMQP topology of CONTRACT §3. Every exchange and queue name is spelled
 * here and nowhere else; the worker and the tests import `AmqpNames` too.
 */
export const AmqpNames = {
  /** Durable topic exchange backends publish to (`namespace.id.type`). */
  eventsExchange: "sobranie.events",
  /** Durable topic exchange gateways bind their node queues to. */
  liveExchange: "sobranie.live",
  /** Where undeliverable or invalid events go, fanned out to `deadQueue`. */
  deadLetterExchange: "sobranie.dlx",
  deadQueue: "sobranie.dead",
  /** Presence traffic between nodes (declared now, used by the presence work). */
  presenceExchange: "sobranie.presence",
  /** Per-node queue name prefix: `sobranie.node.<nodeId>`. */
  nodeQueuePrefix: "sobranie.node.",
  /** `clientProperties.connection_name` prefix, so operators and tests can find a node's connection. */
  connectionNamePrefix: "sobranie-gateway-",
  /** The worker's quorum queue of durable-namespace events (CONTRACT §3). */
  persistQueue: "sobranie.persist",
  /** `connection_name` prefix of a worker's connection: `sobranie-worker-<nodeId>`. */
  workerConnectionNamePrefix: "sobranie-worker-",
} as const;

/** Headers the gateway writes on dead-lettered messages and on its own publishes. */
export const AmqpHeaders = {
  deadReason: "x-sobranie-reason",
  deadMessage: "x-sobranie-message",
  deadNode: "x-sobranie-node",
  deadQueue: "x-sobranie-queue",
  /** Publish time in ms; the AMQP `timestamp` property only holds seconds. */
  timestampMs: "x-sobranie-ts-ms",
} as const;

/**
 * Bound on `sobranie.dead`: with drop-head overflow a flood of poison messages
 * costs at most this many messages of broker memory and disk; the oldest go first.
 */
export const DEAD_QUEUE_MAX_LENGTH = 100_000;

const TOPIC = "topic";
const FANOUT = "fanout";

const MS_PER_SECOND = 1_000;

/**
 * The AMQP properties of every event this codebase publishes: JSON, the
 * event id as `message_id` (what consumers de-duplicate on), and the publish
 * time twice: the AMQP `timestamp` (whole seconds, by the spec) for other
 * tools, and `x-sobranie-ts-ms` for our delivery-latency measurement.
 */
export function eventProperties(event: { messageId: string; timestampMs: number; persistent: boolean }): Options.Publish {
  return {
    persistent: event.persistent,
    contentType: "application/json",
    messageId: event.messageId,
    timestamp: Math.floor(event.timestampMs / MS_PER_SECOND),
    headers: { [AmqpHeaders.timestampMs]: event.timestampMs },
  };
}

export function nodeQueueName(nodeId: string): string {
  return `${AmqpNames.nodeQueuePrefix}${nodeId}`;
}

export function connectionName(nodeId: string): string {
  return `${AmqpNames.connectionNamePrefix}${nodeId}`;
}

export function workerConnectionName(nodeId: string): string {
  return `${AmqpNames.workerConnectionNamePrefix}${nodeId}`;
}

/** The binding key on the live exchange for a channel prefix (`room.7` → `room.7.#`). */
export function liveBindingKey(prefix: string): string {
  return `${prefix}.#`;
}

export interface NodeQueueOptions {
  /** Messages kept while the node is slow or briefly away; beyond it the oldest are dropped. */
  readonly maxLength: number;
  /** A live message older than this is worthless to a client: the broker discards it. */
  readonly messageTtlMs: number;
  /** The queue is deleted after the node has been gone (no consumer, no redeclare) this long. */
  readonly expiresMs: number;
}

/**
 * Asserts the shared topology. Idempotent; safe to run on every (re)connect
 * and from every node. A declare that conflicts with an existing entity
 * (different type or arguments) fails with 406 and closes the channel, which
 * the caller treats like any other connection failure.
 *
 * Guarantee: after it resolves, events published with a routing key under one
 * of `liveNamespaces` are forwarded to the live exchange by the broker itself.
 * Namespaces removed from the list are not unbound here (another node with the
 * old configuration may still rely on them during a rolling deploy).
 */
export async function assertSharedTopology(channel: Channel, liveNamespaces: readonly string[]): Promise<void> {
  const durable: Options.AssertExchange = { durable: true, autoDelete: false };
  await Promise.all([
    channel.assertExchange(AmqpNames.eventsExchange, TOPIC, durable),
    channel.assertExchange(AmqpNames.liveExchange, TOPIC, durable),
    channel.assertExchange(AmqpNames.deadLetterExchange, FANOUT, durable),
    channel.assertExchange(AmqpNames.presenceExchange, TOPIC, durable),
    channel.assertQueue(AmqpNames.deadQueue, {
      durable: true,
      maxLength: DEAD_QUEUE_MAX_LENGTH,
      overflow: "drop-head",
    }),
  ]);
  await Promise.all([
    channel.bindQueue(AmqpNames.deadQueue, AmqpNames.deadLetterExchange, ""),
    ...liveNamespaces.map((namespace) =>
      channel.bindExchange(AmqpNames.liveExchange, AmqpNames.eventsExchange, liveBindingKey(namespace)),
    ),
  ]);
}

/**
 * Declares this node's queue. Not exclusive and not auto-delete, so messages
 * and bindings survive a short disconnect and are there again on reconnect;
 * `x-expires` removes it once the node is gone for good. No dead-letter
 * exchange on purpose: live messages dropped by length or TTL are stale, not
 * poison, and must not flood `sobranie.dead`.
 */
export async function assertNodeQueue(channel: Channel, nodeId: string, options: NodeQueueOptions): Promise<string> {
  const queue = nodeQueueName(nodeId);
  await channel.assertQueue(queue, {
    durable: false,
    exclusive: false,
    autoDelete: false,
    maxLength: options.maxLength,
    overflow: "drop-head",
    messageTtl: options.messageTtlMs,
    expires: options.expiresMs,
  });
  return queue;
}

export interface PersistQueueDeclaration {
  /** `AmqpNames.persistQueue` in production; tests use unique names. */
  readonly queue: string;
  /** Each becomes a binding `<namespace>.#` from the events exchange. */
  readonly durableNamespaces: readonly string[];
  /**
   * Deliveries after which the broker dead-letters a message to
   * `sobranie.dlx` (`x-delivery-limit`). Unset: no limit, so a long database
   * outage never turns stored-later events into dead letters.
   */
  readonly deliveryLimit?: number;
}

/**
 * Declares the worker's queue: a durable quorum queue (replicated, survives a
 * broker node loss) with single active consumer, so exactly one worker in the
 * cluster consumes at a time and queue order is the order events are stored
 * in. Messages the broker itself gives up on (delivery limit) go to
 * `sobranie.dlx`. Changing these arguments on an existing queue fails with
 * 406: that needs a new queue name or a migration, not a redeploy.
 * Namespaces removed from the list are not unbound (same reasoning as
 * assertSharedTopology).
 */
export async function assertPersistQueue(channel: Channel, declaration: PersistQueueDeclaration): Promise<void> {
  const args: Record<string, unknown> = {
    "x-queue-type": "quorum",
    "x-single-active-consumer": true,
    "x-dead-letter-exchange": AmqpNames.deadLetterExchange,
  };
  if (declaration.deliveryLimit !== undefined) args["x-delivery-limit"] = declaration.deliveryLimit;
  await channel.assertQueue(declaration.queue, { durable: true, exclusive: false, autoDelete: false, arguments: args });
  await Promise.all(
    declaration.durableNamespaces.map((namespace) =>
      channel.bindQueue(declaration.queue, AmqpNames.eventsExchange, liveBindingKey(namespace)),
    ),
  );
}
