import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Options } from "amqplib";
import { SobranieError } from "@sobranie/protocol/errors";
import { withDefaultHeartbeat } from "@sobranie/publisher/amqp/session";
import { AmqpNames } from "@sobranie/protocol/amqp";
import { DEAD_QUEUE_ARGUMENTS, assertDeadLetterExchange, assertDeadQueue } from "./topology.js";

/**
 * `npm run upgrade-broker`: replaces a classic `sobranie.dead` (made by an
 * earlier version) with the quorum queue the code declares now, keeping
 * every dead letter, those already in it and those arriving meanwhile.
 *
 * A queue's type cannot change in place, so the letters go through a
 * temporary quorum queue, `sobranie.dead.upgrading`:
 *   1. tell what `sobranie.dead` is (a declare with the quorum arguments);
 *   2. declare the temporary queue and bind it to `sobranie.dlx`;
 *   3. unbind the classic queue, so new dead letters reach only the temporary one;
 *   4. move the classic queue's messages into the temporary queue;
 *   5. delete the classic queue (if-empty);
 *   6. declare `sobranie.dead` as a quorum queue, bound to `sobranie.dlx`;
 *   7. unbind the temporary queue, move its messages into `sobranie.dead`, delete it.
 *
 * Every step is idempotent and the state is read from the broker, not
 * remembered, so an interrupted run is finished by running the tool again:
 * a quorum `sobranie.dead` next to a temporary queue means steps 6-7 are left.
 *
 * Guarantees. No dead letter is lost: a message is acked in its source queue
 * only after the broker confirmed its copy in the target, and `sobranie.dlx`
 * always has a queue bound (the new binding is made before the old one is
 * removed; the broker's own dead-lettering drops what reaches no queue).
 * Delivery is at least once, not exactly once: a run that dies between a
 * confirm and its ack leaves that message in both queues (at most the
 * in-flight bound, MOVE_IN_FLIGHT), and a dead letter published in the one
 * round trip between a bind and the following unbind (steps 2-3, 6-7) is
 * routed to both queues. A dead letter twice is preferred to none. The
 * temporary queue has the bound of `sobranie.dead` (DEAD_QUEUE_ARGUMENTS):
 * past 100,000 letters the oldest go, there as in `sobranie.dead` itself.
 */

/** Messages moved at once: delivered to the tool and not yet confirmed in the target (the consumer's prefetch). */
export const MOVE_IN_FLIGHT = 500;
/** A progress line every this many moved messages. */
const PROGRESS_EVERY = 1_000;
/** How often a move asks the broker whether its source queue is drained. */
const DRAINED_CHECK_MS = 100;
/** TCP connect + AMQP handshake budget of the tool's own connection. */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Headers a quorum queue writes on each delivery: its own delivery counters
 * (`x-acquired-count` from RabbitMQ 4.3 on). Copied out of the temporary
 * queue they would describe the tool's read, not the dead letter; the quorum
 * `sobranie.dead` writes its own when it delivers.
 */
const QUORUM_DELIVERY_HEADERS = ["x-delivery-count", "x-acquired-count"] as const;

const FANOUT = "fanout";
/** AMQP reply code of a passive declare of a queue that does not exist. */
const NOT_FOUND = 404;

/** Receives one human-readable line per step and every PROGRESS_EVERY moved messages. */
export type UpgradeProgress = (line: string) => void;

export interface DeadQueueUpgradeResult {
  /** `upgraded`: a classic queue was replaced. `already-quorum`: there was none (a leftover temporary queue may have been emptied). */
  readonly outcome: "upgraded" | "already-quorum";
  /** Messages moved from the classic `sobranie.dead` into the temporary queue. */
  readonly movedToTemporary: number;
  /** Messages moved from the temporary queue into the quorum `sobranie.dead`. */
  readonly movedToDeadQueue: number;
}

/** The upgrade cannot go on; the broker was left in a state a new run picks up from, once the operator fixed the cause. */
export class DeadQueueUpgradeError extends SobranieError {
  override readonly name = "DeadQueueUpgradeError";
  readonly code = "upgrade_failed";
  readonly retryable = false;
}

const { deadQueue, deadQueueUpgrading, deadLetterExchange, deadLetterMoveExchange } = AmqpNames;

/**
 * Runs the upgrade on `broker`: a URL (the tool opens and closes its own
 * connection) or an open connection (left open). Resolves once the broker is
 * upgraded or was already; rejects on the first failure.
 */
export async function upgradeDeadQueue(broker: ChannelModel | string, progress: UpgradeProgress): Promise<DeadQueueUpgradeResult> {
  if (typeof broker !== "string") return upgrade(broker, progress);
  const model = await amqp.connect(withDefaultHeartbeat(broker), {
    clientProperties: { connection_name: AmqpNames.upgradeConnectionName },
    timeout: CONNECT_TIMEOUT_MS,
  });
  // Failures surface as rejected operations; without a listener an 'error' event would crash the process.
  model.on("error", () => {});
  try {
    return await upgrade(model, progress);
  } finally {
    await model.close().catch(() => {});
  }
}

async function upgrade(model: ChannelModel, progress: UpgradeProgress): Promise<DeadQueueUpgradeResult> {
  if ((await deadQueueType(model)) === "quorum") {
    const movedToDeadQueue = await finish(model, progress);
    if (movedToDeadQueue === 0) progress(`${deadQueue} is already a quorum queue: nothing to do`);
    return { outcome: "already-quorum", movedToTemporary: 0, movedToDeadQueue };
  }
  progress(`${deadQueue} is a classic queue: moving its dead letters to a quorum queue`);
  await onOwnChannel(model, async (channel) => {
    await assertDeadLetterExchange(channel);
    await channel.assertQueue(deadQueueUpgrading, { durable: true, arguments: { ...DEAD_QUEUE_ARGUMENTS } });
    await channel.bindQueue(deadQueueUpgrading, deadLetterExchange, "");
    await channel.unbindQueue(deadQueue, deadLetterExchange, "");
  });
  progress(`${deadLetterExchange} routes to ${deadQueueUpgrading} now, no longer to the classic ${deadQueue}`);
  const movedToTemporary = await moveAll(model, deadQueue, deadQueueUpgrading, progress, []);
  await onOwnChannel(model, (channel) => channel.deleteQueue(deadQueue, { ifEmpty: true }));
  progress(`deleted the classic ${deadQueue}`);
  const movedToDeadQueue = await finish(model, progress);
  return { outcome: "upgraded", movedToTemporary, movedToDeadQueue };
}

/**
 * What `sobranie.dead` is, told by declaring it with the quorum arguments on
 * a channel of its own: success means quorum (or absent, and now created as
 * quorum); a 406 on `x-queue-type` means classic. Anything else (a classic
 * queue whose node is down answers 404, a quorum queue with other arguments
 * 406 on another argument) is not a state this tool knows how to move from.
 */
async function deadQueueType(model: ChannelModel): Promise<"quorum" | "classic"> {
  try {
    await onOwnChannel(model, (channel) => channel.assertQueue(deadQueue, { durable: true, arguments: { ...DEAD_QUEUE_ARGUMENTS } }));
    return "quorum";
  } catch (error) {
    const text = messageOf(error);
    if (/inequivalent arg 'x-queue-type'/.test(text)) return "classic";
    const hint = codeOf(error) === NOT_FOUND ? " (a classic queue whose node is down answers 404: start that node first)" : "";
    throw new DeadQueueUpgradeError(`cannot tell what ${deadQueue} is${hint}: ${text}`, { cause: error });
  }
}

/**
 * Steps 6-7, also all a run does when it finds a quorum `sobranie.dead`:
 * declares and binds it (it may be missing: a run that died between steps 5
 * and 6), then empties a leftover temporary queue into it. Returns how many
 * messages that moved.
 */
async function finish(model: ChannelModel, progress: UpgradeProgress): Promise<number> {
  await onOwnChannel(model, async (channel) => {
    await assertDeadLetterExchange(channel);
    await assertDeadQueue(channel);
  });
  if (!(await queueExists(model, deadQueueUpgrading))) {
    await onOwnChannel(model, (channel) => channel.deleteExchange(deadLetterMoveExchange));
    return 0;
  }
  progress(`${deadQueue} is a quorum queue bound to ${deadLetterExchange}; emptying ${deadQueueUpgrading} into it`);
  await onOwnChannel(model, (channel) => channel.unbindQueue(deadQueueUpgrading, deadLetterExchange, ""));
  const moved = await moveAll(model, deadQueueUpgrading, deadQueue, progress, QUORUM_DELIVERY_HEADERS);
  await deleteDrainedQuorumQueue(model, deadQueueUpgrading);
  await onOwnChannel(model, (channel) => channel.deleteExchange(deadLetterMoveExchange));
  progress(`deleted ${deadQueueUpgrading}`);
  return moved;
}

/**
 * Moves every message of `from` into `to`, each with its routing key, body
 * and properties, and returns how many. `from` must receive nothing new (it
 * is unbound before). A message is acked in `from` only after the broker
 * confirmed its copy in `to`; at most MOVE_IN_FLIGHT are between the two.
 *
 * The copies go through `sobranie.dead.move`, a fanout exchange bound to
 * `to` alone: the default exchange would deliver them with the queue's name
 * as routing key, losing the event's own. Publishes are mandatory, so a
 * missing `to` fails the move instead of being confirmed as dropped.
 */
async function moveAll(
  model: ChannelModel,
  from: string,
  to: string,
  progress: UpgradeProgress,
  /** Headers `from` adds on delivery (QUORUM_DELIVERY_HEADERS for a quorum queue), not copied. */
  addedOnDelivery: readonly string[],
): Promise<number> {
  await onOwnChannel(model, async (channel) => {
    await channel.assertExchange(deadLetterMoveExchange, FANOUT, { durable: true, autoDelete: false });
    // Never bound to both: copies would flow back into the queue being emptied.
    await channel.unbindQueue(from, deadLetterMoveExchange, "");
    await channel.bindQueue(to, deadLetterMoveExchange, "");
  });
  const source = await model.createChannel();
  const target = await model.createConfirmChannel();
  let failure: Error | undefined;
  const fail = (error: Error) => (failure ??= error);
  source.on("error", fail);
  target.on("error", fail);
  // A return precedes the confirm of the same message on the channel: by the
  // time a confirm callback runs, a return for that message has been seen.
  target.on("return", () => fail(new DeadQueueUpgradeError(`a message moved to ${to} reached no queue: was ${to} deleted?`)));

  const waiting = new Set<Promise<void>>();
  let moved = 0;
  try {
    const before = await source.checkQueue(from);
    if (before.consumerCount > 0) {
      throw new DeadQueueUpgradeError(`${from} has ${before.consumerCount} consumer(s): stop them first (they would take dead letters this tool must move)`);
    }
    progress(`moving ${before.messageCount} message(s) from ${from} to ${to}`);
    await source.prefetch(MOVE_IN_FLIGHT);
    const onDelivery = (message: ConsumeMessage | null) => {
      if (message === null) {
        fail(new DeadQueueUpgradeError(`${from} was deleted while its messages were being moved`));
        return;
      }
      // Never rejects: every failure is recorded in `failure` and ends the move.
      const copied = republish(target, message, addedOnDelivery).then(
        () => {
          if (failure) return;
          try {
            source.ack(message);
          } catch (error) {
            fail(asError(error));
            return;
          }
          moved += 1;
          if (moved % PROGRESS_EVERY === 0) progress(`moved ${moved} message(s) from ${from} to ${to}`);
        },
        (error: unknown) => void fail(asError(error)),
      );
      waiting.add(copied);
      void copied.finally(() => waiting.delete(copied));
    };
    // Exclusive: a consumer started by someone else meanwhile is refused (classic queues enforce it).
    const { consumerTag } = await source.consume(from, onDelivery, { noAck: false, exclusive: true });
    // Drained: nothing of ours awaits a confirm and the broker holds no ready message.
    // A delivery still on the wire is handled before cancel-ok arrives.
    for (;;) {
      await sleep(DRAINED_CHECK_MS);
      if (failure) throw failure;
      if (waiting.size > 0) continue;
      if ((await source.checkQueue(from)).messageCount === 0) break;
    }
    await source.cancel(consumerTag);
    await Promise.all([...waiting]);
    if (failure) throw failure;
    // `from` received nothing after it was unbound, so it held at least what it had at the start.
    if (moved < before.messageCount) {
      throw new DeadQueueUpgradeError(`${from} looked drained after ${moved} of its ${before.messageCount} message(s): stopped; run the tool again`);
    }
    // The close round trip makes the broker apply the acks before anything checks the queue.
    await source.close();
    progress(`moved ${moved} message(s) from ${from} to ${to}: ${from} is empty`);
    return moved;
  } finally {
    await Promise.allSettled([...waiting]);
    await Promise.allSettled([source.close(), target.close()]);
  }
}

/**
 * Publishes a copy of `message` to `sobranie.dead.move` (→ the one queue bound
 * to it) and resolves on the broker's confirm. Carries the routing key, the
 * body and every property amqplib can publish (headers unchanged, but for
 * those the source queue itself added on delivery);
 * persistent whatever the original said, as dead letters are kept on disk.
 * `user_id` is kept too: RabbitMQ accepts it only when it names the user the
 * tool connects as. `cluster_id` is not carried: AMQP 0-9-1 deprecated it
 * and amqplib cannot publish it.
 */
function republish(target: ConfirmChannel, message: ConsumeMessage, addedOnDelivery: readonly string[]): Promise<void> {
  const properties = message.properties;
  const headers = properties.headers === undefined ? undefined : { ...properties.headers };
  for (const name of addedOnDelivery) delete headers?.[name];
  const options: Options.Publish = {
    mandatory: true,
    persistent: true,
    contentType: properties.contentType,
    contentEncoding: properties.contentEncoding,
    headers,
    priority: properties.priority,
    correlationId: properties.correlationId,
    replyTo: properties.replyTo,
    expiration: properties.expiration,
    messageId: properties.messageId,
    timestamp: properties.timestamp,
    type: properties.type,
    userId: properties.userId,
    appId: properties.appId,
  };
  return new Promise((resolve, reject) => {
    // The return value (write buffer full) is not waited on: the prefetch already bounds what is in flight.
    target.publish(deadLetterMoveExchange, message.fields.routingKey, message.content, options, (error) =>
      error ? reject(asError(error)) : resolve(),
    );
  });
}

/**
 * Deletes a quorum queue the tool has emptied. Not with if-empty: RabbitMQ
 * does not implement it for quorum queues and answers with a 540 that closes
 * the whole connection (measured on 3.10). Emptiness is checked first
 * instead; nothing refills the queue between check and delete, as it is
 * unbound and only this tool publishes to it.
 */
async function deleteDrainedQuorumQueue(model: ChannelModel, queue: string): Promise<void> {
  await onOwnChannel(model, async (channel) => {
    const { messageCount, consumerCount } = await channel.checkQueue(queue);
    if (messageCount > 0 || consumerCount > 0) {
      throw new DeadQueueUpgradeError(`${queue} still has ${messageCount} message(s) and ${consumerCount} consumer(s): not deleted; run the tool again`);
    }
    await channel.deleteQueue(queue);
  });
}

async function queueExists(model: ChannelModel, queue: string): Promise<boolean> {
  try {
    await onOwnChannel(model, (channel) => channel.checkQueue(queue));
    return true;
  } catch (error) {
    if (codeOf(error) === NOT_FOUND) return false;
    throw error;
  }
}

/**
 * Runs `step` on a fresh channel and closes it. A 404 or 406 closes the
 * channel and rejects the step; the connection and the next step's channel
 * are unaffected.
 */
async function onOwnChannel<T>(model: ChannelModel, step: (channel: Channel) => Promise<T>): Promise<T> {
  const channel = await model.createChannel();
  channel.on("error", () => {});
  try {
    return await step(channel);
  } finally {
    await channel.close().catch(() => {});
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function codeOf(error: unknown): unknown {
  return (error as { code?: unknown } | undefined)?.code;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
