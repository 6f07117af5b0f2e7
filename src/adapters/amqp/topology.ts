import type { Channel, Options } from "amqplib";
import { randomBytes } from "node:crypto";
import { AmqpNames } from "@sobranie/protocol/amqp";
import type { ChannelAttempt } from "@sobranie/publisher/amqp/session";

// Declares the AMQP topology of docs/protocol.md §3 (exchanges, queues, bindings,
// arguments); its names are wire facts the publisher SDK shares, spelled once
// in @sobranie/protocol/amqp.

/**
 * Bound on `sobranie.dead`: with drop-head overflow a flood of poison messages
 * costs at most this many messages of broker memory and disk; the oldest go first.
 */
export const DEAD_QUEUE_MAX_LENGTH = 100_000;

/**
 * `sobranie.dead` is a quorum queue: replicated, so no single broker node's
 * loss makes it unavailable (a classic durable queue is unreachable while its
 * one home node is down, and every declare of it fails with 404).
 */
export const DEAD_QUEUE_ARGUMENTS = {
  "x-queue-type": "quorum",
  "x-max-length": DEAD_QUEUE_MAX_LENGTH,
  "x-overflow": "drop-head",
} as const;

/**
 * `x-delivery-limit` of `sobranie.persist`: deliveries after which the broker
 * dead-letters a message. Set explicitly because RabbitMQ 4 gives quorum
 * queues a default limit of 20, and redeliveries are not rare here: every
 * worker restart, and every consumer_timeout (30 min) during a database
 * outage, redelivers the whole prefetched batch. 20 would turn a ten-hour
 * outage into dead-lettered durable events. 1,000 still stops a message that
 * crashes every worker that takes it from blocking the queue forever. On
 * RabbitMQ 3.x no limit was the default; a queue declared by an earlier
 * version without it keeps working (see assertPersistQueue).
 */
export const PERSIST_DELIVERY_LIMIT = 1_000;

/** Bound on the best-effort declare of `sobranie.dead` (a quorum without its majority does not answer). */
const DEAD_QUEUE_DECLARE_TIMEOUT_MS = 5_000;
/** Bound on the persist queue's declare on its own channel; past it the connection attempt fails and is retried. */
const PERSIST_DECLARE_TIMEOUT_MS = 10_000;

const TOPIC = "topic";
const FANOUT = "fanout";

/**
 * A fresh node queue name for each connection: `sobranie.node.<nodeId>.<8 hex>`.
 * A new connection never reuses the queue of an old one, which may still sit
 * on a hung node (a declare of it would wait on that node) or be locked by the
 * old connection until its node notices it is gone.
 */
export function nodeQueueName(nodeId: string): string {
  return `${AmqpNames.nodeQueuePrefix}${nodeId}.${randomBytes(4).toString("hex")}`;
}

/**
 * The presence exchange of a deployment: `sobranie.presence.<id>` with a
 * DEPLOYMENT_ID, so deployments sharing a vhost never hear each other's
 * nodes; `sobranie.presence` without one (what every version before
 * DEPLOYMENT_ID used, so an upgrade without setting it changes nothing).
 */
export function presenceExchangeName(deploymentId: string | undefined): string {
  return deploymentId === undefined ? AmqpNames.presenceExchange : `${AmqpNames.presenceExchange}.${deploymentId}`;
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
  /** Messages kept while the node is slow; beyond it the oldest are dropped. */
  readonly maxLength: number;
  /** A live message older than this is worthless to a client: the broker discards it. */
  readonly messageTtlMs: number;
}

/**
 * Asserts the shared exchanges and the events → live bindings. Idempotent;
 * safe to run on every (re)connect and from every node. Exchanges and
 * bindings are cluster-wide metadata: no single broker node's loss makes this
 * fail. A declare that conflicts with an existing entity (different type or
 * arguments) fails with 406 and closes the channel, which the caller treats
 * like any other connection failure.
 *
 * Guarantee: after it resolves, events published with a routing key under one
 * of `liveNamespaces` are forwarded to the live exchange by the broker itself.
 * Namespaces removed from the list are not unbound here (another node with the
 * old configuration may still rely on them during a rolling deploy).
 *
 * The presence exchange declared here is the default `sobranie.presence`
 * (the one in rabbitmq/definitions.json); a deployment with DEPLOYMENT_ID
 * has its presence bus declare its own.
 */
export async function assertSharedTopology(channel: Channel, liveNamespaces: readonly string[]): Promise<void> {
  const durable: Options.AssertExchange = { durable: true, autoDelete: false };
  await Promise.all([
    channel.assertExchange(AmqpNames.eventsExchange, TOPIC, durable),
    channel.assertExchange(AmqpNames.liveExchange, TOPIC, durable),
    channel.assertExchange(AmqpNames.deadLetterExchange, FANOUT, durable),
    channel.assertExchange(AmqpNames.presenceExchange, TOPIC, durable),
    channel.assertExchange(AmqpNames.controlExchange, FANOUT, durable),
  ]);
  await Promise.all(
    liveNamespaces.map((namespace) => channel.bindExchange(AmqpNames.liveExchange, AmqpNames.eventsExchange, liveBindingKey(namespace))),
  );
}

/** Declares `sobranie.dlx` alone, as assertSharedTopology does; for the upgrade tool, which needs nothing else. */
export async function assertDeadLetterExchange(channel: Channel): Promise<void> {
  await channel.assertExchange(AmqpNames.deadLetterExchange, FANOUT, { durable: true, autoDelete: false });
}

/** Declares `sobranie.dead` and binds it to `sobranie.dlx`; the upgrade tool and tests use it directly. */
export async function assertDeadQueue(channel: Channel): Promise<void> {
  await channel.assertQueue(AmqpNames.deadQueue, { durable: true, arguments: { ...DEAD_QUEUE_ARGUMENTS } });
  await channel.bindQueue(AmqpNames.deadQueue, AmqpNames.deadLetterExchange, "");
}

/** Where `ensureDeadQueue` left `sobranie.dead`, for the caller to log. */
export type DeadQueueState = { ok: true } | { ok: false; hint: string; error: unknown };

/**
 * Best effort, on a channel of its own: no process consumes `sobranie.dead`,
 * so none may fail to connect because it is unavailable (its quorum lost, or a
 * classic queue of an earlier version whose node is down). Dead letters do
 * not depend on this succeeding: they are published mandatory and confirmed,
 * so one that reaches no queue is kept and retried, never acked away.
 */
export async function ensureDeadQueue(attempt: ChannelAttempt): Promise<DeadQueueState> {
  const result = await attempt(assertDeadQueue, DEAD_QUEUE_DECLARE_TIMEOUT_MS);
  if (result.ok) return result;
  const text = result.error instanceof Error ? result.error.message : String(result.error);
  const hint = /inequivalent arg 'x-queue-type'/.test(text)
    ? "sobranie.dead is a classic queue made by an earlier version: run `npm run upgrade-broker` to move it to a quorum queue"
    : "sobranie.dead could not be declared (its nodes down, or no quorum): dead letters wait in their source queues until it is back";
  return { ok: false, hint, error: result.error };
}

/**
 * Declares this node's queue for one connection: exclusive, so the broker
 * deletes it (and its bindings) the moment that connection ends, and it
 * lives on the node the gateway is connected to. Its messages do not outlive
 * the connection: after any reconnect the gateway repairs durable channels
 * from the event store and tells non-durable ones' subscribers of the gap.
 * Bounded by length and TTL. No dead-letter exchange on purpose: live
 * messages dropped by length or TTL are stale, not poison, and must not
 * flood `sobranie.dead`.
 *
 * Bound to the control exchange as it is declared, so every connection of
 * every node takes the control commands published while it is up.
 */
export async function assertNodeQueue(channel: Channel, nodeId: string, options: NodeQueueOptions): Promise<string> {
  const queue = nodeQueueName(nodeId);
  await channel.assertQueue(queue, {
    durable: false,
    exclusive: true,
    autoDelete: false,
    maxLength: options.maxLength,
    overflow: "drop-head",
    messageTtl: options.messageTtlMs,
  });
  await channel.bindQueue(queue, AmqpNames.controlExchange, "");
  return queue;
}

export interface PersistQueueDeclaration {
  /** `AmqpNames.persistQueue` in production; tests use unique names. */
  readonly queue: string;
  /** Each becomes a binding `<namespace>.#` from the events exchange. */
  readonly durableNamespaces: readonly string[];
  /** `x-delivery-limit`; default PERSIST_DELIVERY_LIMIT (tests use small ones). */
  readonly deliveryLimit?: number;
}

/** What assertPersistQueue found. */
export type PersistQueueState = "declared" | "declared-without-delivery-limit";

/**
 * Declares the worker's queue: a durable quorum queue (replicated, survives a
 * broker node loss) with single active consumer, so exactly one worker in the
 * cluster consumes at a time and queue order is the order events are stored
 * in. Messages the broker itself gives up on (delivery limit) go to
 * `sobranie.dlx`. Changing these arguments on an existing queue fails with
 * 406: that needs a new queue name or a migration, not a redeploy.
 *
 * One difference is tolerated: a queue declared by an earlier version without
 * `x-delivery-limit` (RabbitMQ 3.x: no limit) is used as it is, checked
 * passively on a channel of its own, and reported so the caller can tell the
 * operator to set the `delivery-limit` policy before moving to RabbitMQ 4.
 * Namespaces removed from the list are not unbound (same reasoning as
 * assertSharedTopology).
 */
export async function assertPersistQueue(
  channel: Channel,
  declaration: PersistQueueDeclaration,
  attempt: ChannelAttempt,
): Promise<PersistQueueState> {
  const args: Record<string, unknown> = {
    "x-queue-type": "quorum",
    "x-single-active-consumer": true,
    "x-dead-letter-exchange": AmqpNames.deadLetterExchange,
    "x-delivery-limit": declaration.deliveryLimit ?? PERSIST_DELIVERY_LIMIT,
  };
  const declared = await attempt(
    (own) => own.assertQueue(declaration.queue, { durable: true, exclusive: false, autoDelete: false, arguments: args }).then(() => undefined),
    PERSIST_DECLARE_TIMEOUT_MS,
  );
  let state: PersistQueueState = "declared";
  if (!declared.ok) {
    const text = declared.error instanceof Error ? declared.error.message : String(declared.error);
    if (!/inequivalent arg 'x-delivery-limit'.*current is none/.test(text)) throw declared.error;
    await channel.checkQueue(declaration.queue);
    state = "declared-without-delivery-limit";
  }
  await Promise.all(
    declaration.durableNamespaces.map((namespace) =>
      channel.bindQueue(declaration.queue, AmqpNames.eventsExchange, liveBindingKey(namespace)),
    ),
  );
  return state;
}

/**
 * What the webhook queue takes from `sobranie.events`: every presence channel
 * change (not the `presence.status.*` ones, whose last word is
 * online/offline), and the Pusher side's `pusher.<appId>.*` of each app with
 * webhooks (webhookEntryBindingKey).
 */
export const WEBHOOK_PRESENCE_BINDING_KEYS = ["presence.*.*.join", "presence.*.*.leave", "presence.*.*.occupied", "presence.*.*.vacated"] as const;

export function webhookEntryBindingKey(appId: string): string {
  return `pusher.${appId}.*`;
}

/**
 * The webhook queue of a deployment: `sobranie.webhooks.<id>` with a
 * DEPLOYMENT_ID, so deployments sharing a vhost each send their own apps'
 * webhooks (a shared queue would hand one's presence events to the other's
 * workers); `sobranie.webhooks` without one.
 */
export function webhookQueueName(deploymentId: string | undefined): string {
  return deploymentId === undefined ? AmqpNames.webhookQueue : `${AmqpNames.webhookQueue}.${deploymentId}`;
}

export interface WebhookQueueDeclaration {
  /** webhookQueueName in production; tests use unique names. */
  readonly queue: string;
  /** Apps with webhooks: each gets a binding `pusher.<appId>.*`. */
  readonly appIds: readonly string[];
  /** One delay queue per step, named `<queue>.delay.<ms>`. */
  readonly delayStepsMs: readonly number[];
}

export function webhookDelayQueueName(queue: string, stepMs: number): string {
  return `${queue}.delay.${stepMs}`;
}

/**
 * Declares the webhook queue and its delay queues, all quorum (replicated,
 * surviving a broker node's loss and every worker restart). The webhook
 * queue is consumed by every worker at once (competing consumers: each
 * message reaches one of them); messages the broker gives up on (delivery
 * limit) go to `sobranie.dlx`. A delay queue holds retries, each with its own
 * `expiration`; an expired one is dead-lettered back to the webhook queue
 * through the default exchange, at least once (`at-least-once` needs
 * `reject-publish`: a full queue refuses the retry's publish, which the
 * worker then retries, instead of dropping one). One queue per backoff step
 * keeps retries of alike delays together: a queue expires from its head
 * only, so a long delay must not sit in front of a short one. Apps removed
 * from the configuration are not unbound (a worker of the old configuration
 * may still send their webhooks during a rolling deploy).
 */
export async function assertWebhookQueues(channel: Channel, declaration: WebhookQueueDeclaration): Promise<void> {
  await channel.assertQueue(declaration.queue, {
    durable: true,
    arguments: {
      "x-queue-type": "quorum",
      "x-dead-letter-exchange": AmqpNames.deadLetterExchange,
      // As on sobranie.persist, for the same reasons: restarts redeliver what
      // was held, and RabbitMQ 4's default of 20 would dead-letter it.
      "x-delivery-limit": PERSIST_DELIVERY_LIMIT,
    },
  });
  const keys = [...WEBHOOK_PRESENCE_BINDING_KEYS, ...declaration.appIds.map(webhookEntryBindingKey)];
  await Promise.all(keys.map((key) => channel.bindQueue(declaration.queue, AmqpNames.eventsExchange, key)));
  await Promise.all(
    declaration.delayStepsMs.map((stepMs) =>
      channel.assertQueue(webhookDelayQueueName(declaration.queue, stepMs), {
        durable: true,
        arguments: {
          "x-queue-type": "quorum",
          "x-dead-letter-exchange": "",
          "x-dead-letter-routing-key": declaration.queue,
          "x-dead-letter-strategy": "at-least-once",
          "x-overflow": "reject-publish",
        },
      }),
    ),
  );
}
