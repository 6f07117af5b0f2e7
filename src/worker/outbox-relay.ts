import { fullJitterDelayMs, type BackoffOptions } from "@sobranie/protocol/runtime/backoff";
import type { Clock, Timer } from "@sobranie/protocol/runtime/clock";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Metrics } from "../core/ports/metrics.js";
import type { EventsPublisher, Outbox, OutboxRow, OutboxSignal } from "../core/ports/outbox.js";

export interface OutboxRelayOptions {
  /** Most rows claimed, published and marked in one transaction. */
  readonly batchSize: number;
  /** Read the outbox this often even without a NOTIFY (NOTIFYs are lost while nobody listens). */
  readonly sweepIntervalMs: number;
  /** Published rows older than this are deleted (at each sweep). */
  readonly keepPublishedMs: number;
  /** Backoff after a failed batch (database or broker away). */
  readonly retry?: BackoffOptions;
}

export interface OutboxRelayDeps {
  readonly outbox: Outbox;
  readonly publisher: EventsPublisher;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly options: OutboxRelayOptions;
}

const DEFAULT_RETRY: BackoffOptions = { initialDelayMs: 100, maxDelayMs: 5_000 };
/** Rows deleted per prune statement: bounds one statement's lock time on a large backlog. */
const PRUNE_LIMIT = 10_000;

/**
 * Relays the PostgreSQL outbox to `sobranie.events`.
 *
 * Guarantees: every committed outbox row is published at least once, in id
 * order among the rows visible when it is read; a row is marked published
 * only after the broker confirmed it, so a crash between confirm and mark
 * republishes it (same message_id; the worker's dedupe by event id and the
 * gateways' seq check turn that into exactly-once for clients).
 *
 * Reads are triggered by a NOTIFY, by LISTEN being (re)established, by the
 * sweep timer, and by the previous batch having been full. Triggers that
 * arrive during a read are coalesced into one more read.
 */
export class OutboxRelay implements OutboxSignal {
  private readonly deps: OutboxRelayDeps;
  private draining: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private failures = 0;
  private sweep: Timer | undefined;
  private retryTimer: Timer | undefined;
  private pruning = false;
  private stopping: Promise<void> | undefined;

  constructor(deps: OutboxRelayDeps) {
    this.deps = deps;
  }

  /** Starts listening, then reads what accumulated while no relay ran. Rejects if the database cannot be reached. */
  async start(): Promise<void> {
    await this.deps.outbox.start(this);
    this.sweep = this.deps.clock.setInterval(() => {
      this.wake();
      this.prune();
    }, this.deps.options.sweepIntervalMs);
    this.wake();
  }

  notified(): void {
    this.wake();
  }

  listening(): void {
    this.wake();
  }

  isReady(): boolean {
    return this.deps.outbox.isListening();
  }

  /** Stops the timers, lets the batch in flight finish (or fail, leaving its rows unmarked), closes. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopped = true;
      this.sweep?.cancel();
      this.retryTimer?.cancel();
      await this.draining;
      await this.deps.outbox.stop();
    })();
    return this.stopping;
  }

  /** Settles when no read is running (tests and shutdown). */
  idle(): Promise<void> {
    return this.draining ?? Promise.resolve();
  }

  private wake(): void {
    // During a backoff the retry timer is the next read: a NOTIFY must not cut the backoff short.
    if (this.stopped || this.retryTimer) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
    });
  }

  private async drain(): Promise<void> {
    const { outbox, options, logger } = this.deps;
    let full: boolean;
    do {
      this.again = false;
      let relayed: number;
      try {
        const result = await outbox.relayBatch(options.batchSize, (rows) => this.publish(rows));
        // Another relay holds the claim and reads until the outbox is empty; our sweep checks again later.
        if (result.busy) return;
        relayed = result.relayed;
        this.failures = 0;
      } catch (error) {
        this.scheduleRetry(error);
        return;
      }
      if (relayed > 0) {
        this.deps.metrics.outboxRelayed(relayed);
        logger.debug({ relayed }, "outbox rows relayed");
      }
      full = relayed === options.batchSize;
    } while ((full || this.again) && !this.stopped);
  }

  private publish(rows: readonly OutboxRow[]): Promise<void> {
    // Issued together: the publisher keeps write order, and confirms pipeline.
    return Promise.all(
      rows.map((row) =>
        this.deps.publisher.publish({ routingKey: row.routingKey, body: row.body, messageId: row.eventId, timestampMs: row.createdAtMs }),
      ),
    ).then(() => undefined);
  }

  private scheduleRetry(error: unknown): void {
    if (this.stopped) return;
    const retry = this.deps.options.retry ?? DEFAULT_RETRY;
    const delayMs = Math.max(retry.initialDelayMs, fullJitterDelayMs(retry, this.failures));
    this.failures += 1;
    this.deps.metrics.outboxRelayFailed();
    this.deps.logger.warn({ err: error, failures: this.failures, delayMs }, "outbox relay failed; rows stay unpublished and are retried");
    this.retryTimer = this.deps.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.wake();
    }, delayMs);
  }

  private prune(): void {
    if (this.pruning || this.stopped) return;
    this.pruning = true;
    const { outbox, clock, options, logger } = this.deps;
    outbox
      .prunePublished(clock.now() - options.keepPublishedMs, PRUNE_LIMIT)
      .then(
        (removed) => removed > 0 && logger.info({ removed }, "outbox: removed published rows"),
        (error: unknown) => logger.warn({ err: error }, "outbox prune failed; retrying next sweep"),
      )
      .finally(() => (this.pruning = false));
  }
}
