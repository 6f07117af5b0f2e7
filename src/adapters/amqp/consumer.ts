import type { Channel, ConsumeMessage } from "amqplib";
import { fullJitterDelayMs } from "@sobranie/protocol/runtime/backoff";
import { publishDeadLetter } from "./dead-letter.js";
import type { BrokerHandler, DeliveryOutcome, LiveDelivery } from "../../core/ports/broker.js";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { ConfirmPublisher } from "@sobranie/publisher/amqp/confirm-publisher";
import { AmqpHeaders, AmqpNames } from "@sobranie/protocol/amqp";

/** Dead-letter reason for a handler that threw (the port says: treated as `internal`). */
const HANDLER_THREW_REASON = "internal";
/**
 * An AMQP `timestamp` above this is taken to be milliseconds already: as
 * seconds it would be a date in the year 5138. Publishers that follow the
 * spec (seconds) and ones that put `Date.now()` there both come out right.
 */
const TIMESTAMP_SECONDS_LIMIT = 100_000_000_000;
const MS_PER_SECOND = 1000;
/** One delivery tag waiting to be settled; `done` flips when its outcome is safe to ack. */
interface Pending {
  readonly tag: number;
  done: boolean;
  /** A dead letter that failed at least once (sobranie.dead unavailable) and is being retried. */
  retrying: boolean;
}

/** Retries of a dead letter the broker did not take: from 0.5 s, doubling, at most 30 s apart, for as long as it takes. */
const DEAD_LETTER_RETRY = { initialDelayMs: 500, maxDelayMs: 30_000 } as const;

/**
 * Consumes this node's queue on one channel with manual acks.
 *
 * Guarantees:
 * - The handler sees every delivery synchronously, in queue order.
 * - A message is acked only after its outcome is safe: at once for
 *   `delivered`; for `dead-letter` only after `sobranie.dead` confirmed the
 *   copy. A dead letter the broker does not take (sobranie.dead unavailable)
 *   is kept unacked and published again after a backoff, for as long as it
 *   takes; if the channel closes first the broker redelivers the original.
 * - Acks are batched with `multiple` up to the longest run of settled tags
 *   from the oldest, so a dead letter awaiting its confirm is never acked by
 *   a later tag's batch. Behind a dead letter being retried, later tags are
 *   acked one by one, so the prefetch window keeps moving and live delivery
 *   does not stop while sobranie.dead is away.
 */
export class NodeQueueConsumer {
  private pending: Pending[] = [];
  private flushScheduled = false;
  private consumerTag: string | undefined;
  private closed = false;

  constructor(
    private readonly channel: Channel,
    private readonly queue: string,
    private readonly handler: BrokerHandler,
    private readonly publisher: ConfirmPublisher,
    private readonly nodeId: string,
    private readonly logger: Logger,
  ) {
    channel.on("close", () => {
      // The broker requeues every unacked message of a closed channel.
      this.closed = true;
      this.pending.length = 0;
    });
  }

  async start(prefetch: number): Promise<void> {
    await this.channel.prefetch(prefetch);
    const reply = await this.channel.consume(this.queue, (message) => this.onMessage(message), { noAck: false });
    this.consumerTag = reply.consumerTag;
  }

  /** Stops new deliveries; those already received are still settled. */
  async cancel(): Promise<void> {
    const tag = this.consumerTag;
    this.consumerTag = undefined;
    if (tag === undefined || this.closed) return;
    await this.channel.cancel(tag);
    this.flush();
  }

  /** Acks whatever is settled now, without waiting for the next I/O turn (used by stop()). */
  flushNow(): void {
    this.flush();
  }

  private onMessage(message: ConsumeMessage | null): void {
    if (message === null) {
      // Cancelled by the broker (queue deleted): closing the channel makes
      // the connection supervisor re-declare the queue and consume again.
      this.logger.warn({ queue: this.queue }, "node queue consumer cancelled by the broker");
      this.channel.close().catch(() => {});
      return;
    }
    const entry: Pending = { tag: message.fields.deliveryTag, done: false, retrying: false };
    this.pending.push(entry);
    const outcome = this.decide(message);
    if (outcome.kind === "delivered") {
      entry.done = true;
      this.scheduleFlush();
      return;
    }
    this.deadLetterUntilTaken(entry, message, outcome.reason, outcome.message, 0);
  }

  private deadLetterUntilTaken(entry: Pending, message: ConsumeMessage, reason: string, text: string, failures: number): void {
    if (this.closed) return;
    this.deadLetter(message, reason, text).then(
      () => {
        entry.done = true;
        this.scheduleFlush();
      },
      (error: unknown) => {
        if (this.closed) return;
        const delayMs = Math.max(DEAD_LETTER_RETRY.initialDelayMs, fullJitterDelayMs(DEAD_LETTER_RETRY, failures));
        this.logger.warn({ err: error, routingKey: message.fields.routingKey, failures: failures + 1, delayMs }, "dead-letter publish failed; kept unacked and retried");
        entry.retrying = true;
        this.scheduleFlush();
        setTimeout(() => this.deadLetterUntilTaken(entry, message, reason, text, failures + 1), delayMs).unref();
      },
    );
  }

  private decide(message: ConsumeMessage): DeliveryOutcome {
    const delivery: LiveDelivery = {
      routingKey: message.fields.routingKey,
      body: message.content,
      messageId: typeof message.properties.messageId === "string" ? message.properties.messageId : undefined,
      timestampMs: readTimestampMs(message),
      excludeSocket: readExcludeSocket(message),
    };
    try {
      return message.fields.exchange === AmqpNames.controlExchange ? this.handler.handleControl(delivery) : this.handler.handleDelivery(delivery);
    } catch (error) {
      this.logger.error({ err: error, routingKey: delivery.routingKey }, "delivery handler threw");
      return { kind: "dead-letter", reason: HANDLER_THREW_REASON, message: errorMessage(error) };
    }
  }

  private deadLetter(message: ConsumeMessage, reason: string, text: string): Promise<void> {
    return publishDeadLetter(this.publisher, message, { reason, text, nodeId: this.nodeId, queue: this.queue });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // One ack per I/O turn: amqplib hands over every delivery of a socket read
    // in one turn, so this batches without delaying acks past prefetch.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.closed) return;
    let settled = 0;
    while (settled < this.pending.length && this.pending[settled]?.done) settled += 1;
    const last = this.pending[settled - 1];
    this.pending.splice(0, settled);
    if (last !== undefined) this.ack(last.tag, true);
    if (!this.pending[0]?.retrying) return;
    // Each tag is acked exactly once: these leave `pending` as they are acked.
    for (const entry of this.pending) if (entry.done) this.ack(entry.tag, false);
    this.pending = this.pending.filter((entry) => !entry.done);
  }

  private ack(tag: number, multiple: boolean): void {
    try {
      this.channel.ack({ fields: { deliveryTag: tag } } as ConsumeMessage, multiple);
    } catch {
      // Channel already closed: those messages are redelivered after reconnect.
    }
  }
}

/** The publish time in ms: the ms header when present, else the AMQP `timestamp` (seconds, or ms from sloppy publishers). */
export function readTimestampMs(message: ConsumeMessage): number | undefined {
  const header: unknown = message.properties.headers?.[AmqpHeaders.timestampMs];
  if (typeof header === "number" && Number.isFinite(header)) return header;
  const timestamp: unknown = message.properties.timestamp;
  if (typeof timestamp !== "number" || !Number.isFinite(timestamp)) return undefined;
  return timestamp > TIMESTAMP_SECONDS_LIMIT ? timestamp : timestamp * MS_PER_SECOND;
}

/** The `x-sobranie-exclude-socket` header when it is a string (anything else is ignored). */
export function readExcludeSocket(message: ConsumeMessage): string | undefined {
  const header: unknown = message.properties.headers?.[AmqpHeaders.excludeSocket];
  if (typeof header === "string") return header;
  // amqplib hands a header published from another client as a Buffer when it was sent as bytes.
  return Buffer.isBuffer(header) ? header.toString("utf8") : undefined;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
