import { BatchPump } from "../../core/batch-pump.js";
import { checkOutcomes, PersistOutcomeMismatchError } from "../../core/persist-outcomes.js";
import { BrokerUnavailableError } from "@sobranie/protocol/errors";
import { type Clock, systemClock } from "@sobranie/protocol/runtime/clock";
import { type Logger, silentLogger } from "@sobranie/protocol/runtime/logger";
import type { LivePublish, PersistBatchHandler, PersistQueue } from "../../core/ports/persist-queue.js";
import { type BacklogEntry, type MemoryEventMessage, MemoryPersistBacklog } from "./memory-persist-backlog.js";

/** The live exchange as the embedded broker exposes it (`MemoryBroker.deliverLive` fits). */
export type DeliverLive = (routingKey: string, body: string, props: { messageId: string; timestampMs: number; excludeSocket?: string | undefined }) => void;

export interface MemoryPersistQueueOptions {
  /** Configure the backlog this queue creates; ignored when `backlog` is given. */
  readonly durableNamespaces: readonly string[];
  readonly maxQueueLength?: number;
  /** An existing backlog to consume, e.g. the one a stopped instance left (`queue.backlog`). */
  readonly backlog?: MemoryPersistBacklog;
  readonly deliverLive: DeliverLive;
  readonly maxBatch?: number;
  readonly maxBatchWaitMs?: number;
  /** Pause after a rejected batch, doubling per consecutive failure up to `maxDelayMs`. */
  readonly retryBackoff?: { readonly initialDelayMs: number; readonly maxDelayMs: number };
  /** Bound on waiting for the batch in flight at stop(). */
  readonly stopTimeoutMs?: number;
  readonly logger?: Logger;
  readonly clock?: Clock;
}

const DEFAULT_MAX_BATCH = 200;
const DEFAULT_MAX_BATCH_WAIT_MS = 5;
const DEFAULT_RETRY = { initialDelayMs: 200, maxDelayMs: 10_000 };
const DEFAULT_STOP_TIMEOUT_MS = 10_000;
const GROWTH_FACTOR = 2;

/** A dispatched batch; `abandoned` once stop() gave up waiting and put it back, so a late result is ignored. */
interface InFlight {
  readonly entries: BacklogEntry[];
  abandoned: boolean;
}

/**
 * The persist queue of the embedded single-node mode, held to the same
 * contract as AmqpPersistQueue: batches in order, one in flight, a batch is
 * removed only once handleBatch resolved (dead-letters recorded first), a
 * rejected batch returns to the head marked `redelivered` and the next batch
 * waits a backoff. Wire `accept` to MemoryBroker's `onEventsPublish` and
 * `deliverLive` to `MemoryBroker.deliverLive`.
 */
export class MemoryPersistQueue implements PersistQueue {
  readonly backlog: MemoryPersistBacklog;
  private readonly pump: BatchPump<BacklogEntry>;
  private readonly logger: Logger;
  private phase: "idle" | "running" | "stopping" | "stopped" = "idle";
  private handler: PersistBatchHandler | undefined;
  private inFlight: InFlight | undefined;
  private stopPromise: Promise<void> | undefined;
  private readonly wake = (): void => this.pump.wake();

  constructor(private readonly options: MemoryPersistQueueOptions) {
    const clock = options.clock ?? systemClock;
    this.logger = (options.logger ?? silentLogger).child({ component: "memory-persist-queue" });
    this.backlog =
      options.backlog ??
      new MemoryPersistBacklog({
        durableNamespaces: options.durableNamespaces,
        maxLength: options.maxQueueLength,
        logger: options.logger,
        clock,
      });
    const retry = options.retryBackoff ?? DEFAULT_RETRY;
    const backlog = this.backlog;
    const wake = this.wake;
    this.pump = new BatchPump<BacklogEntry>({
      clock,
      maxBatch: options.maxBatch ?? DEFAULT_MAX_BATCH,
      maxBatchWaitMs: options.maxBatchWaitMs ?? DEFAULT_MAX_BATCH_WAIT_MS,
      retryDelayMs: (attempt) => Math.min(retry.maxDelayMs, retry.initialDelayMs * GROWTH_FACTOR ** attempt),
      // A standby consumer sees an empty queue until it becomes the active one.
      source: {
        get size() {
          return backlog.isActive(wake) ? backlog.size : 0;
        },
        get firstArrivalMs() {
          return backlog.isActive(wake) ? backlog.firstArrivalMs : undefined;
        },
        take: (max) => (backlog.isActive(wake) ? backlog.take(max) : []),
      },
      run: (batch) => this.runBatch(batch),
    });
  }

  /** The events exchange hands every publish here; only durable namespaces are kept. Throws PersistQueueFullError when full. */
  accept(message: MemoryEventMessage): void {
    this.backlog.accept(message);
  }

  async start(handler: PersistBatchHandler): Promise<void> {
    if (this.phase === "running") return;
    if (this.phase !== "idle") throw new BrokerUnavailableError("persist queue already stopped");
    this.handler = handler;
    this.phase = "running";
    this.pump.start();
    this.backlog.attach(this.wake);
  }

  isReady(): boolean {
    return this.phase === "running";
  }

  async publishLive(message: LivePublish): Promise<void> {
    // Allowed while stopping: the batch in flight publishes before it resolves.
    if (this.phase === "idle" || this.phase === "stopped") throw new BrokerUnavailableError("persist queue is not running");
    this.options.deliverLive(message.routingKey, message.body, { messageId: message.messageId, timestampMs: message.timestampMs, excludeSocket: message.excludeSocket });
  }

  stop(): Promise<void> {
    this.stopPromise ??= this.shutdown();
    return this.stopPromise;
  }

  private async shutdown(): Promise<void> {
    const wasRunning = this.phase === "running";
    this.phase = "stopping";
    if (wasRunning && !(await this.pump.halt(this.options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS))) {
      // Like a consumer whose connection closed with the batch unacked: it goes back, nothing is lost.
      const abandoned = this.inFlight;
      if (abandoned) {
        abandoned.abandoned = true;
        this.backlog.returnToHead(abandoned.entries);
        this.logger.warn({ size: abandoned.entries.length }, "batch still running at stop; returned to the queue");
      }
    }
    this.backlog.detach(this.wake);
    this.phase = "stopped";
  }

  private async runBatch(entries: BacklogEntry[]): Promise<void> {
    const handler = this.handler;
    if (!handler) return;
    const batch: InFlight = { entries, abandoned: false };
    this.inFlight = batch;
    try {
      const outcomes = checkOutcomes(entries.length, await handler.handleBatch(entries.map((entry) => entry.message)));
      if (batch.abandoned) return;
      outcomes.forEach((outcome, index) => {
        const entry = entries[index];
        if (outcome.kind === "dead-letter" && entry) this.backlog.deadLetter(entry, outcome.reason, outcome.message);
      });
    } catch (error) {
      if (batch.abandoned) return;
      const log = error instanceof PersistOutcomeMismatchError ? this.logger.error : this.logger.warn;
      log.call(this.logger, { err: error, size: entries.length }, "persist batch failed; returned to the queue for redelivery");
      this.backlog.returnToHead(entries);
      throw error;
    } finally {
      if (this.inFlight === batch) this.inFlight = undefined;
    }
  }
}
