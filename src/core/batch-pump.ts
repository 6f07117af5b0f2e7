import type { Clock, Timer } from "@sobranie/protocol/runtime/clock";

/** Where a BatchPump takes its items from: the adapter's buffer of received, not yet dispatched messages. */
export interface BatchSource<T> {
  readonly size: number;
  /** `clock.monotonic()` when the oldest item still waiting arrived; undefined when empty. */
  readonly firstArrivalMs: number | undefined;
  /** Removes and returns up to `max` items from the head, in order. */
  take(max: number): T[];
}

export interface BatchPumpOptions<T> {
  readonly clock: Clock;
  readonly source: BatchSource<T>;
  readonly maxBatch: number;
  readonly maxBatchWaitMs: number;
  /** Pause after the `attempt`-th consecutive failed batch (0-based). */
  readonly retryDelayMs: (attempt: number) => number;
  /**
   * Handles one batch. Resolving means it is settled for good. Rejecting
   * means the caller already handed the batch back for redelivery; the pump
   * then waits `retryDelayMs` before the next batch so a failing store is not
   * hammered in a hot loop.
   */
  readonly run: (batch: T[]) => Promise<void>;
}

/**
 * Turns a stream of received items into batches, one in flight at a time.
 *
 * A batch leaves as soon as `maxBatch` items wait, or when the oldest waiting
 * item has waited `maxBatchWaitMs`: under load batches fill up, when quiet a
 * lone message costs at most `maxBatchWaitMs` of extra latency. Items that
 * piled up while a batch was in flight go out at once when it settles.
 *
 * Guarantee: `run` is never called while a previous `run` is pending, so
 * batches are handled strictly in source order.
 */
export class BatchPump<T> {
  private running = false;
  private inFlight: Promise<void> | undefined;
  private waitTimer: Timer | undefined;
  private backoffTimer: Timer | undefined;
  private failures = 0;

  constructor(private readonly options: BatchPumpOptions<T>) {}

  get busy(): boolean {
    return this.inFlight !== undefined;
  }

  start(): void {
    this.running = true;
    this.wake();
  }

  /** Call when items arrived (or the source changed): dispatches now or arms the wait timer. */
  wake(): void {
    if (!this.running || this.inFlight || this.backoffTimer) return;
    const { source, clock, maxBatch, maxBatchWaitMs } = this.options;
    const first = source.firstArrivalMs;
    if (source.size === 0 || first === undefined) {
      this.cancelWait();
      return;
    }
    const waited = clock.monotonic() - first;
    if (source.size >= maxBatch || waited >= maxBatchWaitMs) {
      this.cancelWait();
      this.dispatch();
      return;
    }
    this.waitTimer ??= clock.setTimeout(() => {
      this.waitTimer = undefined;
      this.wake();
    }, maxBatchWaitMs - waited);
  }

  /**
   * Stops dispatching new batches. Resolves true once the batch in flight (if
   * any) has settled, false if it is still running after `timeoutMs`.
   */
  async halt(timeoutMs: number): Promise<boolean> {
    this.running = false;
    this.cancelWait();
    this.backoffTimer?.cancel();
    this.backoffTimer = undefined;
    const inFlight = this.inFlight;
    if (!inFlight) return true;
    let timer: Timer | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = this.options.clock.setTimeout(() => resolve(false), timeoutMs);
    });
    const settled = await Promise.race([inFlight.then(() => true), timedOut]);
    timer?.cancel();
    return settled;
  }

  private dispatch(): void {
    const batch = this.options.source.take(this.options.maxBatch);
    if (batch.length === 0) return;
    const inFlight = this.options.run(batch).then(
      () => {
        this.failures = 0;
      },
      () => {
        const delayMs = this.options.retryDelayMs(this.failures);
        this.failures += 1;
        if (!this.running) return;
        this.backoffTimer = this.options.clock.setTimeout(() => {
          this.backoffTimer = undefined;
          this.wake();
        }, delayMs);
      },
    );
    this.inFlight = inFlight.finally(() => {
      this.inFlight = undefined;
      this.wake();
    });
  }

  private cancelWait(): void {
    this.waitTimer?.cancel();
    this.waitTimer = undefined;
  }
}
