import type { Knex } from "@mikro-orm/postgresql";
import { checkLimit, checkSeq, namespaceOf, normalizeOccurredAt, retentionLimit } from "../../core/event-store-input.js";
import type { AppendOutcome, HistoryPage, NewEvent, RetentionPolicy, StoredEvent } from "../../core/ports/event-store.js";
import {
  type BatchRow,
  type EventRow,
  eventsOf,
  insertBatch,
  pruneNamespace,
  selectByIds,
  selectHistory,
  selectLastEvent,
  selectLatestSeq,
  type Tables,
  toEvent,
  toNumber,
} from "./event-sql.js";
import type { SqlRunner } from "./store-connection.js";

/**
 * An id that is neither inserted nor found was stored by a concurrent
 * transaction and pruned before we looked: insert it again, a bounded
 * number of times (it takes retention racing the same id to get here).
 */
const MAX_APPEND_ROUNDS = 3;

interface InsertedRow {
  readonly seq: unknown;
  readonly event_id: unknown;
}
interface HistoryRow extends EventRow {
  readonly pruned_up_to: unknown;
}

/**
 * The event table: append, per-channel history, the latest seq and retention.
 *
 * Guarantees: a batch is stored in one transaction, each id once (the first
 * occurrence in the batch, or the copy stored before, wins); retention of all
 * namespaces deletes and moves the channels' watermarks in one transaction,
 * so `complete` in a history page never claims events retention removed.
 * Each is one statement with bound parameters (see event-sql.ts).
 */
export class SqlEventLog {
  private readonly sql: { readonly insert: string; readonly byIds: string; readonly history: string; readonly lastEvent: string; readonly latestSeq: string };

  constructor(
    private readonly db: SqlRunner,
    private readonly tables: Tables,
  ) {
    this.sql = {
      insert: insertBatch(tables),
      byIds: selectByIds(tables),
      history: selectHistory(tables),
      lastEvent: selectLastEvent(tables),
      latestSeq: selectLatestSeq(tables),
    };
  }

  async append(events: readonly NewEvent[]): Promise<AppendOutcome[]> {
    // Ids repeated within the batch are sent once: the first occurrence wins.
    const batch = new Map<string, BatchRow>();
    for (const event of events) {
      if (batch.has(event.id)) continue;
      batch.set(event.id, {
        i: batch.size,
        event_id: event.id,
        channel: event.channel,
        namespace: namespaceOf(event.channel),
        type: event.type,
        data: event.data ?? null,
        user_id: event.user ?? null,
        occurred_at: normalizeOccurredAt(event.occurredAt),
      });
    }
    if (batch.size === 0) return [];
    const stored = await this.db.transaction((trx) => this.insertOrFind([...batch.values()], trx));
    const reported = new Set<string>();
    return events.map((event) => {
      const found = stored.get(event.id) as { event: StoredEvent; inserted: boolean };
      const duplicate = !found.inserted || reported.has(event.id);
      reported.add(event.id);
      return { event: found.event, duplicate };
    });
  }

  async history(channel: string, afterSeq: number, limit: number): Promise<HistoryPage> {
    namespaceOf(channel);
    checkSeq("afterSeq", afterSeq);
    checkLimit(limit);
    const rows = await this.db.run<HistoryRow>(this.sql.history, [channel, channel, afterSeq, limit]);
    const prunedUpTo = toNumber(rows[0]?.pruned_up_to ?? 0);
    return { events: eventsOf(rows), complete: prunedUpTo <= afterSeq };
  }

  async lastEvent(channel: string): Promise<StoredEvent | undefined> {
    namespaceOf(channel);
    const rows = await this.db.run<EventRow>(this.sql.lastEvent, [channel]);
    return rows[0] === undefined ? undefined : toEvent(rows[0]);
  }

  async latestSeq(): Promise<number> {
    const rows = await this.db.run<{ seq: unknown }>(this.sql.latestSeq, []);
    return toNumber(rows[0]?.seq ?? 0);
  }

  async prune(policies: readonly RetentionPolicy[], nowMs: number): Promise<number> {
    const steps = policies.flatMap((policy) => this.pruneStep(policy, nowMs));
    if (steps.length === 0) return 0;
    // All namespaces in one transaction: deletions and watermarks commit together.
    return this.db.transaction(async (trx) => {
      let removed = 0;
      for (const step of steps) {
        const rows = await this.db.run<{ removed: unknown }>(step.sql, step.bindings, trx);
        removed += toNumber(rows[0]?.removed ?? 0);
      }
      return removed;
    });
  }

  private async insertOrFind(
    pending: BatchRow[],
    trx: Knex.Transaction,
  ): Promise<Map<string, { event: StoredEvent; inserted: boolean }>> {
    const stored = new Map<string, { event: StoredEvent; inserted: boolean }>();
    for (let round = 0; pending.length > 0; round += 1) {
      if (round === MAX_APPEND_ROUNDS) throw new Error(`append: ${pending.length} event(s) neither stored nor found`);
      const inserted = await this.db.run<InsertedRow>(this.sql.insert, [JSON.stringify(pending)], trx);
      const rowsById = new Map(pending.map((row) => [row.event_id, row]));
      for (const { seq, event_id } of inserted) {
        const row = rowsById.get(String(event_id)) as BatchRow;
        stored.set(row.event_id, { event: asStored(row, toNumber(seq)), inserted: true });
      }
      const missing = pending.filter((row) => !stored.has(row.event_id));
      if (missing.length === 0) break;
      // Not inserted: stored before (or by a concurrent batch). Report the first copy.
      const existing = await this.db.run<EventRow>(this.sql.byIds, [JSON.stringify(missing.map((row) => row.event_id))], trx);
      for (const row of existing) stored.set(String(row.event_id), { event: toEvent(row), inserted: false });
      pending = missing.filter((row) => !stored.has(row.event_id));
    }
    return stored;
  }

  private pruneStep(policy: RetentionPolicy, nowMs: number): Array<{ sql: string; bindings: Knex.RawBinding[] }> {
    const maxAgeMs = retentionLimit("maxAgeMs", policy.maxAgeMs);
    const maxPerChannel = retentionLimit("maxPerChannel", policy.maxPerChannel);
    const cutoff = maxAgeMs === undefined ? undefined : new Date(nowMs - maxAgeMs);
    // A cutoff before the earliest representable date cannot match anything.
    const byAge = cutoff !== undefined && !Number.isNaN(cutoff.getTime());
    const byCount = maxPerChannel !== undefined;
    if (!byAge && !byCount) return [];
    const bindings: Knex.RawBinding[] = [];
    if (byAge) bindings.push(policy.namespace, cutoff.toISOString());
    if (byCount) bindings.push(policy.namespace, maxPerChannel);
    return [{ sql: pruneNamespace(this.tables, byAge, byCount), bindings }];
  }
}

/** The event as appended, not re-read: `data` is the caller's value (a JSON-safe one reads back equal). */
function asStored(row: BatchRow, seq: number): StoredEvent {
  const event = { seq, id: row.event_id, channel: row.channel, type: row.type, data: row.data, occurredAt: row.occurred_at };
  return row.user_id === null ? event : { ...event, user: row.user_id };
}
