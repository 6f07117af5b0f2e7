import type { Channel, ConsumeMessage } from "amqplib";
import { publishDeadLetter } from "./dead-letter.js";
import type { BatchSource } from "../../core/batch-pump.js";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { PersistMessage, PersistOutcome } from "../../core/ports/persist-queue.js";
import { readExcludeSocket, readTimestampMs } from "./consumer.js";
import type { ConfirmPublisher } from "@sobranie/publisher/amqp/confirm-publisher";

/** One delivery received on a channel and not yet dispatched, with the consumer that owns its tag. */
export interface HeldDelivery {
  readonly message: ConsumeMessage;
  readonly arrivedAt: number;
  readonly consumer: PersistConsumer;
  /** Handed to the handler before, in a batch that failed (see `putBack`). */
  readonly retried: boolean;
}

/**
 * The persist queue's consumer on ONE channel. Delivery tags only mean
 * something on the channel that issued them, so every settle goes through the
 * consumer that received the message: once its channel is closed, settling is
 * a no-op (the broker has already requeued those messages and will redeliver
 * them, in order, on the next channel).
 *
 * Guarantees:
 * - `settle` dead-letters (with a confirm from `sobranie.dlx`) before it acks,
 *   and acks with `multiple` on the batch's last tag only. That is exact:
 *   batches are taken from the head of the buffer and everything older on
 *   this channel is already settled (one batch in flight at a time).
 * - A failed batch is put back at the head of the buffer, still unacked, and
 *   retried from there, flagged redelivered. Not nacked with requeue: the
 *   broker may already have more deliveries for us on the wire, which would
 *   then arrive before the requeued batch (measured: it reorders). The broker
 *   still redelivers it if this channel dies, and a stopped worker hands it
 *   to the next one in order.
 */
export class PersistConsumer implements BatchSource<HeldDelivery> {
  private buffer: HeldDelivery[] = [];
  private closed = false;

  constructor(
    private readonly channel: Channel,
    private readonly queue: string,
    private readonly publisher: ConfirmPublisher,
    private readonly nodeId: string,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly onArrival: () => void,
  ) {
    channel.on("close", () => {
      this.closed = true;
      this.buffer = [];
    });
  }

  get size(): number {
    return this.buffer.length;
  }

  get firstArrivalMs(): number | undefined {
    return this.buffer[0]?.arrivedAt;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  take(max: number): HeldDelivery[] {
    return this.buffer.splice(0, max);
  }

  async start(prefetch: number): Promise<void> {
    await this.channel.prefetch(prefetch);
    // No basic.cancel ever (see AmqpPersistQueue.stop), so the consumer tag is not kept.
    await this.channel.consume(this.queue, (message) => this.onMessage(message), { noAck: false });
  }

  /** Dead-letters what the handler asked for, then acks the whole batch. Rejects if a dead-letter was not confirmed. */
  async settle(batch: readonly ConsumeMessage[], outcomes: readonly PersistOutcome[]): Promise<void> {
    if (this.closed) return;
    const deadLetters: Array<Promise<void>> = [];
    outcomes.forEach((outcome, index) => {
      const message = batch[index];
      if (outcome.kind === "dead-letter" && message) deadLetters.push(this.deadLetter(message, outcome.reason, outcome.message));
    });
    await Promise.all(deadLetters);
    const last = batch.at(-1);
    if (this.closed || last === undefined) return;
    try {
      this.channel.ack(last, true);
    } catch {
      // Channel closed meanwhile: the broker redelivers; the store drops duplicates by id.
    }
  }

  /** Returns a failed batch to the head of the buffer, to be handed over again. A no-op once the channel closed. */
  putBack(batch: readonly HeldDelivery[]): void {
    if (this.closed) return;
    this.buffer = [...batch.map((held) => ({ ...held, retried: true })), ...this.buffer];
  }

  /**
   * Closes the channel gracefully. Needed before closing the connection: a
   * quorum queue settles acks asynchronously, and an ack followed at once by
   * a connection close is lost (measured: the batch came back). The
   * channel.close round trip lets the broker apply it; unacked deliveries are
   * then returned to the head of the queue.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.channel.close().catch(() => {});
  }

  private onMessage(message: ConsumeMessage | null): void {
    if (message === null) {
      // Cancelled by the broker (queue deleted): closing the channel makes the
      // supervisor re-declare the queue and consume again.
      this.logger.warn({ queue: this.queue }, "persist queue consumer cancelled by the broker");
      this.channel.close().catch(() => {});
      return;
    }
    this.buffer.push({ message, arrivedAt: this.clock.monotonic(), consumer: this, retried: false });
    this.onArrival();
  }

  private deadLetter(message: ConsumeMessage, reason: string, text: string): Promise<void> {
    return publishDeadLetter(this.publisher, message, { reason, text, nodeId: this.nodeId, queue: this.queue });
  }
}

/**
 * Our view of a delivery. The body is a view on amqplib's content Buffer, not
 * a copy: amqplib hands each message its own Buffer (a slice of a socket
 * chunk that Node never reuses), so it stays valid for as long as it is held.
 */
export function toPersistMessage({ message, retried }: HeldDelivery): PersistMessage {
  const content = message.content;
  return {
    routingKey: message.fields.routingKey,
    body: new Uint8Array(content.buffer, content.byteOffset, content.byteLength),
    messageId: typeof message.properties.messageId === "string" ? message.properties.messageId : undefined,
    timestampMs: readTimestampMs(message),
    redelivered: retried || message.fields.redelivered,
    excludeSocket: readExcludeSocket(message),
  };
}
