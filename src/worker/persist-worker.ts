import { parseRoutingKey } from "../protocol/channel.js";
import { decodeEnvelope, encodeEnvelope } from "../protocol/envelope.js";
import { isRetryable } from "../protocol/errors.js";
import type { NamespaceRegistry } from "../core/namespaces.js";
import type { Clock } from "../core/ports/clock.js";
import type { AppendOutcome, EventStore, NewEvent, StoredEvent } from "../core/ports/event-store.js";
import type { Logger } from "../core/ports/logger.js";
import type { Metrics } from "../core/ports/metrics.js";
import type { PersistBatchHandler, PersistMessage, PersistOutcome, PersistQueue } from "../core/ports/persist-queue.js";
import { fullJitterDelayMs, sleep, type BackoffOptions } from "../core/backoff.js";

export interface PersistWorkerDeps {
  readonly store: EventStore;
  readonly queue: PersistQueue;
  readonly namespaces: NamespaceRegistry;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly newId: () => string;
  /** Backoff between attempts while the store or the live exchange is unreachable. */
  readonly retry?: BackoffOptions;
}

interface Accepted {
  readonly index: number;
  readonly event: NewEvent;
  readonly routingKey: string;
  readonly publishedAtMs: number;
  readonly excludeSocket: string | undefined;
}

const DEFAULT_RETRY: BackoffOptions = { initialDelayMs: 100, maxDelayMs: 5_000 };

/**
 * Persist-then-relay: stores each durable event (assigning its seq), then
 * publishes it to the live exchange with its seq, and only then lets the
 * queue ack it.
 *
 * Exactly-once, as clients see it: the input is acked only after the live
 * publish is confirmed (at-least-once relay); an event id stored before is not
 * stored again and is relayed with its first seq, and gateways drop a seq
 * they already delivered on that channel. A crash anywhere in between is
 * repaired by redelivery.
 *
 * While the store or the broker is unreachable the batch is retried with
 * backoff and never acked: events wait in `sobranie.persist`, none is lost.
 */
export class PersistWorker implements PersistBatchHandler {
  private readonly deps: PersistWorkerDeps;
  private readonly stopping = new AbortController();

  constructor(deps: PersistWorkerDeps) {
    this.deps = deps;
  }

  async handleBatch(batch: readonly PersistMessage[]): Promise<PersistOutcome[]> {
    const outcomes: PersistOutcome[] = batch.map(() => ({ kind: "done" }));
    const accepted: Accepted[] = [];
    batch.forEach((message, index) => {
      const verdict = this.accept(message, index);
      if ("reason" in verdict) {
        outcomes[index] = { kind: "dead-letter", reason: verdict.reason, message: verdict.message };
        this.deps.metrics.deadLettered(verdict.reason);
      } else {
        accepted.push(verdict);
      }
    });
    if (accepted.length === 0) return outcomes;

    const stored = await this.store(accepted, outcomes);
    const relayed = new Set<number>();
    const publishes: Array<() => Promise<void>> = [];
    stored.forEach(({ item, outcome }) => {
      this.deps.metrics.eventsPersisted(item.event.channel.split(":")[0]!, outcome.duplicate);
      // One relay per seq per batch; a duplicate of an earlier batch is relayed
      // again on purpose: its first relay may have died with a crashed worker.
      if (relayed.has(outcome.event.seq)) return;
      relayed.add(outcome.event.seq);
      publishes.push(() => this.relay(outcome.event, item));
    });
    await this.withRetry("live publish", () => Promise.all(publishes.map((publish) => publish())));
    return outcomes;
  }

  /**
   * Stores the batch in one transaction. A batch the store refuses for a
   * reason that retrying cannot fix (an event PostgreSQL cannot hold) is split
   * into single events, so only the offending ones are dead-lettered and the
   * rest of the batch goes through.
   */
  private async store(accepted: readonly Accepted[], outcomes: PersistOutcome[]): Promise<Array<{ item: Accepted; outcome: AppendOutcome }>> {
    const append = (items: readonly Accepted[]) => this.withRetry("store", () => this.deps.store.append(items.map((item) => item.event)));
    try {
      return (await append(accepted)).map((outcome, i) => ({ item: accepted[i]!, outcome }));
    } catch (error) {
      if (isRetryable(error) || accepted.length === 1) throw error;
    }
    const stored: Array<{ item: Accepted; outcome: AppendOutcome }> = [];
    for (const item of accepted) {
      try {
        const [outcome] = await append([item]);
        stored.push({ item, outcome: outcome! });
      } catch (error) {
        if (isRetryable(error)) throw error;
        const message = error instanceof Error ? error.message : String(error);
        outcomes[item.index] = { kind: "dead-letter", reason: "store_rejected", message };
        this.deps.metrics.deadLettered("store_rejected");
      }
    }
    return stored;
  }

  /** Ends retry loops: the batch in flight rejects and stays unacked for redelivery. */
  stop(): void {
    this.stopping.abort();
  }

  private accept(message: PersistMessage, index: number): Accepted | { reason: string; message: string } {
    const route = parseRoutingKey(message.routingKey);
    if (!route) return { reason: "bad_routing_key", message: `routing key ${message.routingKey} names no channel and type` };
    if (!this.deps.namespaces.get(route.channel.namespace)?.durable) {
      return { reason: "not_durable", message: `namespace ${route.channel.namespace} is not durable` };
    }
    const decoded = decodeEnvelope(message.body, message, this.deps.newId);
    if (!decoded.ok) return { reason: decoded.reason, message: decoded.message };
    const { envelope } = decoded;
    const publishedAtMs = decoded.publishedAtMs ?? this.deps.clock.now();
    const event: NewEvent = {
      id: envelope.id,
      channel: route.channel.name,
      type: envelope.type,
      data: envelope.data,
      occurredAt: envelope.occurredAt ?? new Date(publishedAtMs).toISOString(),
      user: envelope.user,
    };
    return { index, event, routingKey: message.routingKey, publishedAtMs, excludeSocket: message.excludeSocket };
  }

  private relay(stored: StoredEvent, item: Accepted): Promise<void> {
    const body = encodeEnvelope({
      id: stored.id,
      type: stored.type,
      data: stored.data,
      occurredAt: stored.occurredAt,
      seq: stored.seq,
      ...(stored.user === undefined ? {} : { user: stored.user }),
    });
    return this.deps.queue.publishLive({ routingKey: item.routingKey, body, messageId: stored.id, timestampMs: item.publishedAtMs, excludeSocket: item.excludeSocket });
  }

  private async withRetry<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    const retry = this.deps.retry ?? DEFAULT_RETRY;
    for (let failures = 0; ; failures++) {
      try {
        return await attempt();
      } catch (error) {
        if (!isRetryable(error) || this.stopping.signal.aborted) throw error;
        this.deps.logger.warn({ err: error, failures: failures + 1 }, `${what} failed; retrying`);
        await sleep(this.deps.clock, fullJitterDelayMs(retry, failures), this.stopping.signal);
        if (this.stopping.signal.aborted) throw error;
      }
    }
  }
}
