import { isRetryable } from "@sobranie/protocol/errors";
import type { Clock, Timer } from "@sobranie/protocol/runtime/clock";
import type { Logger } from "@sobranie/protocol/runtime/logger";

/** Publishes in flight at once: enough to pipeline confirms through a connect storm. */
const WINDOW = 500;

/** Publishes one event; rejects with a retryable error (BrokerUnavailableError, a confirm timeout) while the broker cannot take it. */
export type PublishEvent<T> = (event: T) => Promise<void>;

export interface BackendEventQueueOptions {
  /** Events kept while the broker is away; beyond this the oldest are dropped (logged once per outage). */
  readonly maxWaiting: number;
  /** Retry this long after an unavailable broker even without `resume()` (a reconnect may race the failure). */
  readonly retryMs: number;
}

/**
 * Presence events for backends, in order, surviving broker outages: an event
 * whose publish failed with a retryable error (broker away, confirm overdue or
 * nacked) waits, with every later one behind it (so a user's online never
 * overtakes their offline), until `resume()` is called on reconnect (or after
 * `retryMs`). A failure that retrying cannot fix (a bug, an oversized
 * message) is logged and the event skipped, so one bad event cannot stall
 * the queue.
 */
export class BackendEventQueue<T> {
  private readonly waiting: T[] = [];
  private sending = false;
  private paused = false;
  private dropped = 0;
  private retry: Timer | undefined;

  constructor(
    private readonly publish: PublishEvent<T>,
    private readonly options: BackendEventQueueOptions,
    private readonly deps: { readonly clock: Clock; readonly logger: Logger },
  ) {}

  push(event: T): void {
    this.waiting.push(event);
    this.trim();
    void this.pump();
  }

  /** The broker is back: send what waits. */
  resume(): void {
    this.retry?.cancel();
    this.retry = undefined;
    this.paused = false;
    if (this.dropped > 0) this.deps.logger.warn({ dropped: this.dropped }, "presence events were dropped during the broker outage");
    this.dropped = 0;
    void this.pump();
  }

  /** Stops the retry timer; what waits is not sent. */
  close(): void {
    this.retry?.cancel();
    this.paused = true;
  }

  /** Events not yet confirmed sent (for tests and shutdown logs). */
  get size(): number {
    return this.waiting.length;
  }

  /**
   * Sends the waiting events in windows of up to WINDOW publishes in flight
   * (the broker channel keeps their order and pipelines the confirms). Those
   * refused as unavailable go back to the front, in order, and the queue
   * pauses; other failures are logged and skipped.
   */
  private async pump(): Promise<void> {
    if (this.sending || this.paused) return;
    this.sending = true;
    try {
      while (this.waiting.length > 0 && !this.paused) {
        const window = this.waiting.splice(0, WINDOW);
        const outcomes = await Promise.allSettled(window.map((event) => this.publish(event)));
        const retry: T[] = [];
        outcomes.forEach((outcome, i) => {
          if (outcome.status === "fulfilled") return;
          // Unavailable, an overdue or refused confirm: the broker may take it later.
          if (isRetryable(outcome.reason)) retry.push(window[i] as T);
          else this.deps.logger.warn({ err: outcome.reason }, "presence event not published");
        });
        if (retry.length === 0) continue;
        this.waiting.unshift(...retry);
        this.trim();
        this.paused = true;
        this.retry ??= this.deps.clock.setTimeout(() => this.resume(), this.options.retryMs);
        this.deps.logger.warn({ waiting: this.waiting.length }, "presence events wait for the broker");
      }
    } finally {
      this.sending = false;
    }
  }

  /** Keeps the newest maxWaiting. */
  private trim(): void {
    const excess = this.waiting.length - this.options.maxWaiting;
    if (excess <= 0) return;
    this.waiting.splice(0, excess);
    if (this.dropped === 0) this.deps.logger.error({ maxWaiting: this.options.maxWaiting }, "presence events dropped: the broker has been away too long");
    this.dropped += excess;
  }
}
