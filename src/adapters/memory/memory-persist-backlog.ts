import type { BatchSource } from "../../core/batch-pump.js";
import { type Clock, systemClock } from "@sobranie/protocol/runtime/clock";
import { type Logger, silentLogger } from "@sobranie/protocol/runtime/logger";
import type { PersistMessage } from "../../core/ports/persist-queue.js";
import { SobranieError } from "@sobranie/protocol/errors";

/** What the embedded events exchange hands over (MemoryBroker's `onEventsPublish` message fits). */
export interface MemoryEventMessage {
  readonly routingKey: string;
  readonly body: Uint8Array;
  readonly messageId?: string | undefined;
  readonly timestampMs?: number | undefined;
  readonly excludeSocket?: string | undefined;
}

export interface MemoryPersistDeadLetter {
  readonly routingKey: string;
  readonly body: Uint8Array;
  readonly messageId: string | undefined;
  readonly reason: string;
  readonly message: string;
}

export interface MemoryPersistBacklogOptions {
  /** Events whose first routing-key word is one of these are kept; the rest are ignored. */
  readonly durableNamespaces: readonly string[];
  /** Default 100,000. See `accept` for what happens beyond it. */
  readonly maxLength?: number;
  /** Bound of the inspectable `deadLetters` (oldest dropped). Default 1,000. */
  readonly maxDeadLetters?: number;
  readonly logger?: Logger;
  readonly clock?: Clock;
}

/** The embedded persist queue is full: the publish is refused, as RabbitMQ's `reject-publish` overflow would. */
export class PersistQueueFullError extends SobranieError {
  override readonly name = "PersistQueueFullError";
  readonly code = "persist_queue_full";
  readonly retryable = true;
  constructor(maxLength: number) {
    super(`embedded persist queue is full (${maxLength} messages waiting for the worker)`);
  }
}

export interface BacklogEntry {
  readonly message: PersistMessage;
  readonly arrivedAt: number;
}

const DEFAULT_MAX_LENGTH = 100_000;
const DEFAULT_MAX_DEAD_LETTERS = 1_000;
const ROUTING_KEY_SEPARATOR = ".";
/** Compact the array once this many consumed slots lead it (and they are over half of it). */
const COMPACT_THRESHOLD = 1_024;

/**
 * The embedded stand-in for the quorum queue `sobranie.persist`: the binding
 * filter plus the messages themselves. It is separate from MemoryPersistQueue
 * because, as with RabbitMQ, messages outlive a consumer: a worker restarted
 * in the same process (or a test) attaches to the same backlog and finds
 * what the stopped one left. One consumer is active at a time (the first
 * attached); others wait, like single active consumer.
 */
export class MemoryPersistBacklog implements BatchSource<BacklogEntry> {
  /** Dead-lettered messages, newest last (the embedded `sobranie.dead`). */
  readonly deadLetters: MemoryPersistDeadLetter[] = [];
  private readonly namespaces: ReadonlySet<string>;
  private readonly maxLength: number;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private entries: BacklogEntry[] = [];
  private head = 0;
  private refusedSinceFull = 0;
  private readonly consumers: Array<() => void> = [];

  constructor(private readonly options: MemoryPersistBacklogOptions) {
    this.namespaces = new Set(options.durableNamespaces);
    this.maxLength = options.maxLength ?? DEFAULT_MAX_LENGTH;
    this.logger = (options.logger ?? silentLogger).child({ component: "memory-persist-queue" });
    this.clock = options.clock ?? systemClock;
  }

  get size(): number {
    return this.entries.length - this.head;
  }

  get firstArrivalMs(): number | undefined {
    return this.entries[this.head]?.arrivedAt;
  }

  /**
   * The binding: keeps events of durable namespaces, ignores the rest.
   *
   * When full it throws PersistQueueFullError instead of dropping: dropping
   * would lose an event the publisher was told is safe, while a refusal
   * reaches the publisher (MemoryBroker.publish rejects) and can be retried.
   * Logged at error level once per full episode, with the refused count when
   * room returns.
   */
  accept(event: MemoryEventMessage): void {
    const namespace = event.routingKey.split(ROUTING_KEY_SEPARATOR, 1)[0] ?? "";
    if (!this.namespaces.has(namespace)) return;
    if (this.size >= this.maxLength) {
      if (this.refusedSinceFull === 0) {
        this.logger.error({ maxLength: this.maxLength }, "embedded persist queue full: refusing durable events until the worker catches up");
      }
      this.refusedSinceFull += 1;
      throw new PersistQueueFullError(this.maxLength);
    }
    if (this.refusedSinceFull > 0) {
      this.logger.warn({ refused: this.refusedSinceFull }, "embedded persist queue accepting again");
      this.refusedSinceFull = 0;
    }
    const message: PersistMessage = {
      routingKey: event.routingKey,
      // The publisher may reuse its buffer after publish returns.
      body: event.body.slice(),
      messageId: event.messageId,
      timestampMs: event.timestampMs,
      redelivered: false,
      excludeSocket: event.excludeSocket,
    };
    this.entries.push({ message, arrivedAt: this.clock.monotonic() });
    this.consumers[0]?.();
  }

  take(max: number): BacklogEntry[] {
    const taken = this.entries.slice(this.head, this.head + max);
    this.head += taken.length;
    if (this.head >= COMPACT_THRESHOLD && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return taken;
  }

  /** Puts an unfinished batch back at the head, in order, marked redelivered. */
  returnToHead(batch: readonly BacklogEntry[]): void {
    const returned = batch.map((entry) => ({ ...entry, message: { ...entry.message, redelivered: true } }));
    this.entries = [...returned, ...this.entries.slice(this.head)];
    this.head = 0;
  }

  deadLetter(entry: BacklogEntry, reason: string, text: string): void {
    const { routingKey, body, messageId } = entry.message;
    this.deadLetters.push({ routingKey, body, messageId, reason, message: text });
    const max = this.options.maxDeadLetters ?? DEFAULT_MAX_DEAD_LETTERS;
    if (this.deadLetters.length > max) this.deadLetters.splice(0, this.deadLetters.length - max);
    this.logger.warn({ routingKey, reason }, "persist message dead-lettered");
  }

  /** Registers a consumer's wake-up; only the first registered is woken (single active consumer). */
  attach(wake: () => void): void {
    this.consumers.push(wake);
    if (this.consumers.length === 1) wake();
  }

  detach(wake: () => void): void {
    const index = this.consumers.indexOf(wake);
    if (index < 0) return;
    this.consumers.splice(index, 1);
    if (index === 0) this.consumers[0]?.();
  }

  isActive(wake: () => void): boolean {
    return this.consumers[0] === wake;
  }
}
