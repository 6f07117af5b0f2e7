import { BrokerUnavailableError } from "../ports/broker.js";
import type { Clock, Timer } from "../ports/clock.js";
import type { Logger } from "../ports/logger.js";

/** Publishes one event; rejects BrokerUnavailableError while the broker is away. */
export type PublishEvent<T> = (event: T) => Promise<void>;

export interface BackendEventQueueOptions {
  /** Events kept while the broker is away; beyond this the oldest are dropped (logged once per outage). */
  readonly maxWaiting: number;
  /** Retry this long after an unavailable broker even without `resume()` (a reconnect may race the failure). */
  readonly retryMs: number;
}

/**
 * Presence events for backends, in order, surviving broker outages: an event
 * the broker refused as unavailable waits, with every later one behind it (so
 * a user's online never overtakes their offline), until `resume()` is called
 * on reconnect (or after `retryMs`). One publish in flight at a time keeps the order; a failure
 * other than unavailability (a bug, a refused message) is logged and the
 * event skipped, so one bad event cannot stall the queue.
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
    if (this.waiting.length > this.options.maxWaiting) {
      this.waiting.shift();
      if (this.dropped++ === 0) this.deps.logger.error({ maxWaiting: this.options.maxWaiting }, "presence events dropped: the broker has been away too long");
    }
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

  private async pump(): Promise<void> {
    if (this.sending || this.paused) return;
    this.sending = true;
    try {
      while (this.waiting.length > 0 && !this.paused) {
        const event = this.waiting[0] as T;
        try {
          await this.publish(event);
        } catch (error) {
          if (error instanceof BrokerUnavailableError) {
            this.paused = true;
            this.retry ??= this.deps.clock.setTimeout(() => this.resume(), this.options.retryMs);
            this.deps.logger.warn({ waiting: this.waiting.length }, "presence events wait for the broker");
            break;
          }
          this.deps.logger.warn({ err: error }, "presence event not published");
        }
        // Sent, or skipped for good; a concurrent overflow may already have shifted it out.
        if (this.waiting[0] === event) this.waiting.shift();
      }
    } finally {
      this.sending = false;
    }
  }
}
