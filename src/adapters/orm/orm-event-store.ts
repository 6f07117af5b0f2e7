import type { PGlite } from "@electric-sql/pglite";
import { MikroORM } from "@mikro-orm/core";
import type { AbstractSqlDriver, Knex } from "@mikro-orm/postgresql";
import {
  checkLimit,
  checkSeq,
  inboxChannel,
  namespaceOf,
  normalizeOccurredAt,
  retentionLimit,
} from "../../core/event-store-input.js";
import {
  type AppendOutcome,
  type EventStore,
  type HistoryPage,
  type Inbox,
  type NewEvent,
  type RetentionPolicy,
  type StoredEvent,
  StoreUnavailableError,
} from "../../core/ports/event-store.js";
import type { Logger } from "../../core/ports/logger.js";
import type { Revocation } from "../../core/ports/revocation-store.js";
import { isConnectionFailure, redactUrl } from "./connection-errors.js";
import {
  type BatchRow,
  type EventRow,
  insertBatch,
  pruneNamespace,
  selectByIds,
  selectHistory,
  selectLatestSeq,
  selectInbox,
  selectLastSeen,
  type Tables,
  tablesIn,
  toEvent,
  toNumber,
  upsertLastSeen,
  upsertReadMark,
  upsertRevocation,
  selectRevocations,
  deleteExpiredRevocations,
} from "./event-sql.js";
import { applyMigrations } from "./migrate.js";
import { createPGlite, DEFAULT_SCHEMA, ormOptions, SCHEMA_NAME_PATTERN } from "./orm-config.js";

export interface OrmEventStoreOptions {
  /** PostgreSQL URL. Unset: the embedded PGlite (same entities, same migrations). */
  readonly databaseUrl?: string | undefined;
  /** PostgreSQL schema for all tables (created if missing); default `public`. */
  readonly schema?: string | undefined;
  /** PGlite only: data directory; unset keeps the database in memory. */
  readonly pgliteDataDir?: string | undefined;
  /**
   * PGlite only: an instance owned by the caller instead of one the store
   * creates (and closes). Lets tests share one embedded database between
   * per-test schemas; stores sharing it must not run at the same time, since
   * PGlite is one session and their transactions would interleave.
   */
  readonly pglite?: PGlite | undefined;
  readonly logger: Logger;
  /** Logs every statement (MikroORM's and the store's own) at debug level. */
  readonly debug?: boolean | undefined;
  /** Period of the readiness probe (`select 1`); 0 disables it. Default 5000. */
  readonly healthCheckIntervalMs?: number | undefined;
  /** Bound on opening one PostgreSQL connection. Default 5000. */
  readonly connectTimeoutMs?: number | undefined;
}

const DEFAULT_HEALTH_CHECK_INTERVAL_MS = 5_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
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
interface RevocationRow {
  readonly user_id: unknown;
  readonly kind: unknown;
  readonly subject: unknown;
  readonly issued_before_ms: unknown;
  readonly expires_at_ms: unknown;
}

/** A stored row back as a Revocation; a kind this version does not know (written by a newer one) is skipped. */
function toRevocation(row: RevocationRow): Revocation | undefined {
  const userId = String(row.user_id);
  const expiresAtMs = toNumber(row.expires_at_ms);
  const issuedBeforeMs = row.issued_before_ms === null ? undefined : toNumber(row.issued_before_ms);
  if (row.kind === "token") return { kind: "token", userId, tokenId: String(row.subject), expiresAtMs };
  if (issuedBeforeMs === undefined) return undefined;
  if (row.kind === "issued_before") return { kind: "issued_before", userId, issuedBeforeMs, expiresAtMs };
  if (row.kind === "channel") return { kind: "channel", userId, channel: String(row.subject), issuedBeforeMs, expiresAtMs };
  return undefined;
}

interface InboxRow extends EventRow {
  readonly read_up_to: unknown;
  readonly unread: unknown;
}

/**
 * EventStore on PostgreSQL through MikroORM (entities.ts, migrations/), or on
 * an embedded PGlite when no URL is given.
 *
 * Guarantees: `start()` applies pending migrations and rejects with
 * StoreUnavailableError when the database cannot be reached; a query that
 * fails for want of a connection rejects with StoreUnavailableError
 * (retryable, cause kept) and makes `isReady()` false until a query or the
 * periodic probe succeeds again; any other failure is rethrown unchanged.
 * The hot paths are single statements with bound parameters (see event-sql.ts).
 */
export class OrmEventStore implements EventStore {
  private readonly log: Logger;
  private readonly schema: string;
  private readonly tables: Tables;
  private readonly sql: {
    readonly insert: string;
    readonly byIds: string;
    readonly history: string;
    readonly latestSeq: string;
    readonly inbox: string;
    readonly markRead: string;
    readonly saveLastSeen: string;
    readonly loadLastSeen: string;
    readonly saveRevocation: string;
    readonly loadRevocations: string;
    readonly pruneRevocations: string;
  };
  private orm: MikroORM<AbstractSqlDriver> | undefined;
  /** The PGlite this store created and must close; undefined for PostgreSQL or a caller's instance. */
  private pglite: PGlite | undefined;
  private healthy = false;
  private probe: NodeJS.Timeout | undefined;
  private probing = false;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: OrmEventStoreOptions) {
    if (options.schema !== undefined && !SCHEMA_NAME_PATTERN.test(options.schema)) {
      throw new RangeError(`schema must match ${SCHEMA_NAME_PATTERN}, got ${JSON.stringify(options.schema)}`);
    }
    this.schema = options.schema ?? DEFAULT_SCHEMA;
    this.tables = tablesIn(this.schema);
    this.sql = {
      insert: insertBatch(this.tables),
      byIds: selectByIds(this.tables),
      history: selectHistory(this.tables),
      latestSeq: selectLatestSeq(this.tables),
      inbox: selectInbox(this.tables),
      markRead: upsertReadMark(this.tables),
      saveLastSeen: upsertLastSeen(this.tables),
      loadLastSeen: selectLastSeen(this.tables),
      saveRevocation: upsertRevocation(this.tables),
      loadRevocations: selectRevocations(this.tables),
      pruneRevocations: deleteExpiredRevocations(this.tables),
    };
    this.log = options.logger.child({ component: "event-store" });
  }

  /** Connects and migrates; concurrent calls share one attempt, a started store returns at once. */
  start(): Promise<void> {
    this.starting ??= this.open().catch((error: unknown) => {
      this.starting = undefined;
      throw error;
    });
    return this.starting;
  }

  stop(): Promise<void> {
    this.stopping ??= this.close().finally(() => {
      this.stopping = undefined;
    });
    return this.stopping;
  }

  isReady(): boolean {
    return this.orm !== undefined && this.healthy;
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
    const stored = await this.transaction((trx) => this.insertOrFind([...batch.values()], trx));
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
    const rows = await this.run<HistoryRow>(this.sql.history, [channel, channel, afterSeq, limit]);
    const prunedUpTo = toNumber(rows[0]?.pruned_up_to ?? 0);
    return { events: eventsOf(rows), complete: prunedUpTo <= afterSeq };
  }

  async latestSeq(): Promise<number> {
    const rows = await this.run<{ seq: unknown }>(this.sql.latestSeq, []);
    return toNumber(rows[0]?.seq ?? 0);
  }

  async prune(policies: readonly RetentionPolicy[], nowMs: number): Promise<number> {
    const steps = policies.flatMap((policy) => this.pruneStep(policy, nowMs));
    if (steps.length === 0) return 0;
    // All namespaces in one transaction: deletions and watermarks commit together.
    return this.transaction(async (trx) => {
      let removed = 0;
      for (const step of steps) {
        const rows = await this.run<{ removed: unknown }>(step.sql, step.bindings, trx);
        removed += toNumber(rows[0]?.removed ?? 0);
      }
      return removed;
    });
  }

  async inbox(userId: string, afterSeq: number, limit: number): Promise<Inbox> {
    const channel = inboxChannel(userId);
    namespaceOf(channel);
    checkSeq("afterSeq", afterSeq);
    checkLimit(limit);
    const rows = await this.run<InboxRow>(this.sql.inbox, [channel, userId, channel, afterSeq, limit]);
    const first = rows[0];
    return {
      events: eventsOf(rows),
      unread: toNumber(first?.unread ?? 0),
      readUpTo: toNumber(first?.read_up_to ?? 0),
    };
  }

  async markRead(userId: string, upToSeq: number): Promise<number> {
    const channel = inboxChannel(userId);
    namespaceOf(channel);
    checkSeq("upToSeq", upToSeq);
    const rows = await this.run<{ read_up_to: unknown }>(this.sql.markRead, [userId, upToSeq, channel, channel]);
    return toNumber(rows[0]?.read_up_to);
  }

  async saveLastSeen(seen: ReadonlyMap<string, number>): Promise<void> {
    if (seen.size === 0) return;
    const batch: Record<string, string> = {};
    for (const [user, atMs] of seen) batch[user] = new Date(atMs).toISOString();
    await this.run(this.sql.saveLastSeen, [JSON.stringify(batch)]);
  }

  async loadLastSeen(users: readonly string[]): Promise<Map<string, number>> {
    if (users.length === 0) return new Map();
    const rows = await this.run<{ user_id: unknown; at_ms: unknown }>(this.sql.loadLastSeen, [JSON.stringify(users)]);
    return new Map(rows.map((row) => [String(row.user_id), toNumber(row.at_ms)]));
  }

  async saveRevocation(revocation: Revocation): Promise<void> {
    const subject = revocation.kind === "token" ? revocation.tokenId : revocation.kind === "channel" ? revocation.channel : "";
    const issuedBeforeMs = revocation.kind === "token" ? null : revocation.issuedBeforeMs;
    await this.run(this.sql.saveRevocation, [revocation.userId, revocation.kind, subject, issuedBeforeMs, new Date(revocation.expiresAtMs).toISOString()]);
  }

  async loadRevocations(nowMs: number): Promise<Revocation[]> {
    const rows = await this.run<RevocationRow>(this.sql.loadRevocations, [new Date(nowMs).toISOString()]);
    return rows.flatMap((row) => toRevocation(row) ?? []);
  }

  async pruneRevocations(nowMs: number): Promise<number> {
    const [row] = await this.run<{ n: unknown }>(this.sql.pruneRevocations, [new Date(nowMs).toISOString()]);
    return toNumber(row?.n ?? 0);
  }

  private async insertOrFind(
    pending: BatchRow[],
    trx: Knex.Transaction,
  ): Promise<Map<string, { event: StoredEvent; inserted: boolean }>> {
    const stored = new Map<string, { event: StoredEvent; inserted: boolean }>();
    for (let round = 0; pending.length > 0; round += 1) {
      if (round === MAX_APPEND_ROUNDS) throw new Error(`append: ${pending.length} event(s) neither stored nor found`);
      const inserted = await this.run<InsertedRow>(this.sql.insert, [JSON.stringify(pending)], trx);
      const rowsById = new Map(pending.map((row) => [row.event_id, row]));
      for (const { seq, event_id } of inserted) {
        const row = rowsById.get(String(event_id)) as BatchRow;
        stored.set(row.event_id, { event: asStored(row, toNumber(seq)), inserted: true });
      }
      const missing = pending.filter((row) => !stored.has(row.event_id));
      if (missing.length === 0) break;
      // Not inserted: stored before (or by a concurrent batch). Report the first copy.
      const existing = await this.run<EventRow>(this.sql.byIds, [JSON.stringify(missing.map((row) => row.event_id))], trx);
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

  private async open(): Promise<void> {
    const startedMs = performance.now();
    const { databaseUrl } = this.options;
    const owned =
      databaseUrl === undefined && this.options.pglite === undefined ? createPGlite(this.options.pgliteDataDir) : undefined;
    const pglite = databaseUrl === undefined ? (this.options.pglite ?? owned) : undefined;
    let orm: MikroORM<AbstractSqlDriver> | undefined;
    try {
      const target = {
        databaseUrl,
        pgliteDataDir: this.options.pgliteDataDir,
        schema: this.options.schema,
        debug: this.options.debug,
        connectTimeoutMs: this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      };
      orm = await MikroORM.init(ormOptions(target, this.log, pglite));
      const check = await orm.checkConnection();
      if (!check.ok) {
        throw new StoreUnavailableError(`cannot reach ${this.describeTarget()}: ${check.reason ?? "unknown reason"}`, {
          cause: check.error,
        });
      }
      const applied = await applyMigrations(orm, this.schema, databaseUrl !== undefined);
      this.orm = orm;
      this.pglite = owned;
      this.healthy = true;
      this.startProbe();
      this.log.info(
        { target: this.describeTarget(), schema: this.schema, applied, startMs: Math.round(performance.now() - startedMs) },
        "event store started",
      );
    } catch (error) {
      await orm?.close(true).catch(() => undefined);
      await owned?.close().catch(() => undefined);
      if (error instanceof StoreUnavailableError) throw error;
      if (isConnectionFailure(error)) {
        throw new StoreUnavailableError(`cannot reach ${this.describeTarget()}: ${messageOf(error)}`, { cause: error });
      }
      throw error;
    }
  }

  private async close(): Promise<void> {
    const starting = this.starting;
    this.starting = undefined;
    await starting?.catch(() => undefined);
    clearInterval(this.probe);
    this.probe = undefined;
    this.healthy = false;
    const { orm, pglite } = this;
    this.orm = undefined;
    this.pglite = undefined;
    // The ORM first: it may still hand PGlite a query while draining.
    await orm?.close();
    await pglite?.close();
  }

  private startProbe(): void {
    const intervalMs = this.options.healthCheckIntervalMs ?? DEFAULT_HEALTH_CHECK_INTERVAL_MS;
    if (intervalMs <= 0) return;
    this.probe = setInterval(() => void this.checkHealth(), intervalMs);
    this.probe.unref();
  }

  private async checkHealth(): Promise<void> {
    if (this.probing || !this.orm) return;
    this.probing = true;
    try {
      await this.run("select 1", []);
    } catch {
      // run() already recorded the outcome in `healthy`.
    } finally {
      this.probing = false;
    }
  }

  private knex(): Knex {
    if (!this.orm) throw new StoreUnavailableError("event store is not started");
    return this.orm.em.getConnection().getKnex();
  }

  private async transaction<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    try {
      return await this.knex().transaction(work);
    } catch (error) {
      throw this.failure(error);
    }
  }

  /** Runs one statement; records connection health from its outcome. */
  private async run<Row>(sql: string, bindings: readonly Knex.RawBinding[], trx?: Knex.Transaction): Promise<Row[]> {
    const startedMs = this.options.debug ? performance.now() : 0;
    try {
      const result: unknown = await (trx ?? this.knex()).raw(sql, bindings);
      this.setHealthy(true);
      if (this.options.debug) this.log.debug({ sql, ms: performance.now() - startedMs }, "query");
      return rowsOf<Row>(result);
    } catch (error) {
      throw this.failure(error);
    }
  }

  private failure(error: unknown): unknown {
    if (error instanceof StoreUnavailableError) return error;
    if (!isConnectionFailure(error)) return error;
    this.setHealthy(false);
    return new StoreUnavailableError(`event store query failed: ${messageOf(error)}`, { cause: error });
  }

  private setHealthy(healthy: boolean): void {
    if (healthy === this.healthy || !this.orm) return;
    this.healthy = healthy;
    if (healthy) this.log.info({}, "event store reachable again");
    else this.log.warn({ target: this.describeTarget() }, "event store unreachable");
  }

  private describeTarget(): string {
    const { databaseUrl, pgliteDataDir } = this.options;
    if (databaseUrl !== undefined) return redactUrl(databaseUrl);
    return pgliteDataDir === undefined ? "embedded PGlite (in memory)" : `embedded PGlite at ${pgliteDataDir}`;
  }
}

/** The event as appended, not re-read: `data` is the caller's value (a JSON-safe one reads back equal). */
function asStored(row: BatchRow, seq: number): StoredEvent {
  const event = { seq, id: row.event_id, channel: row.channel, type: row.type, data: row.data, occurredAt: row.occurred_at };
  return row.user_id === null ? event : { ...event, user: row.user_id };
}

function eventsOf(rows: readonly EventRow[]): StoredEvent[] {
  return rows.filter((row) => row.seq !== null && row.seq !== undefined).map(toEvent);
}

function rowsOf<Row>(result: unknown): Row[] {
  const rows = (result as { rows?: unknown } | null)?.rows;
  if (!Array.isArray(rows)) throw new TypeError("unexpected result shape from the database driver");
  return rows as Row[];
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
