import type { Clock, Timer } from "@sobranie/protocol/runtime/clock";
import type { LastSeenStore } from "../ports/last-seen-store.js";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Metrics } from "../ports/metrics.js";

export interface LastSeenWriterOptions {
  /** A batch is written at most this long after its first record. */
  readonly flushMs: number;
  /** Users per statement; a full batch is written at once. */
  readonly maxBatch: number;
  /** Users waiting while the store is away; beyond this the oldest are dropped (and counted). */
  readonly maxPending: number;
}

export const DEFAULT_LAST_SEEN_WRITER: LastSeenWriterOptions = { flushMs: 1_000, maxBatch: 500, maxPending: 100_000 };

/**
 * Batches `lastSeen` writes: a thousand users going offline in one second is
 * one or two statements, not a thousand. Per user only the latest time is
 * kept while waiting. One write in flight at a time; a failed batch is merged
 * back (the later time wins) and retried on the next flush, so a store outage
 * loses nothing until `maxPending` users are waiting. `stop()` writes what is
 * left (one attempt) and resolves even if that fails.
 */
export class LastSeenWriter {
  private pending = new Map<string, number>();
  private timer: Timer | undefined;
  private writing: Promise<void> | undefined;
  private failing = false;
  private stopped = false;

  constructor(
    private readonly options: LastSeenWriterOptions,
    private readonly deps: { readonly store: LastSeenStore; readonly clock: Clock; readonly logger: Logger; readonly metrics: Metrics },
  ) {}

  record(user: string, atMs: number): void {
    if (this.stopped) return;
    this.keep(user, atMs);
    if (this.pending.size >= this.options.maxBatch) void this.flush();
    else this.timer ??= this.deps.clock.setTimeout(() => void this.flush(), this.options.flushMs);
  }

  /** Users waiting to be written (for tests and the shutdown log). */
  get waiting(): number {
    return this.pending.size;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.timer?.cancel();
    await this.writing;
    this.failing = false;
    while (this.pending.size > 0) {
      if (!(await this.writeBatch())) break;
    }
    if (this.pending.size > 0) this.deps.logger.warn({ users: this.pending.size }, "lastSeen not saved at shutdown: the store is unreachable");
  }

  /** Writes batches until nothing is waiting or a write fails (then the timer retries). */
  private async flush(): Promise<void> {
    this.timer?.cancel();
    this.timer = undefined;
    if (this.writing) return;
    this.writing = (async () => {
      while (this.pending.size > 0 && !this.stopped) {
        if (!(await this.writeBatch())) break;
      }
    })();
    await this.writing;
    this.writing = undefined;
    if (this.pending.size > 0 && !this.stopped) this.timer ??= this.deps.clock.setTimeout(() => void this.flush(), this.options.flushMs);
  }

  private async writeBatch(): Promise<boolean> {
    const batch = new Map<string, number>();
    for (const [user, atMs] of this.pending) {
      batch.set(user, atMs);
      this.pending.delete(user);
      if (batch.size === this.options.maxBatch) break;
    }
    try {
      await this.deps.store.saveLastSeen(batch);
      this.deps.metrics.lastSeenSaved(batch.size, true);
      if (this.failing) this.deps.logger.info({}, "lastSeen writes succeed again");
      this.failing = false;
      return true;
    } catch (error) {
      this.deps.metrics.lastSeenSaved(batch.size, false);
      if (!this.failing) this.deps.logger.warn({ err: error, users: batch.size }, "lastSeen not saved: retrying");
      this.failing = true;
      for (const [user, atMs] of batch) this.keep(user, atMs);
      return false;
    }
  }

  private keep(user: string, atMs: number): void {
    const known = this.pending.get(user);
    if (known !== undefined && known >= atMs) return;
    this.pending.delete(user);
    this.pending.set(user, atMs);
    if (this.pending.size <= this.options.maxPending) return;
    const oldest = this.pending.keys().next().value;
    if (oldest === undefined) return;
    this.pending.delete(oldest);
    this.deps.metrics.lastSeenDropped();
  }
}
