import type { AppendOutcome, EventStore, HistoryPage, Inbox, NewEvent, RetentionPolicy, StoredEvent } from "../../core/ports/event-store.js";
import type { Revocation } from "../../core/ports/revocation-store.js";
import { SqlEventLog } from "./event-log.js";
import { tablesIn } from "./event-sql.js";
import { SqlInbox } from "./inbox-reads.js";
import { SqlLastSeen } from "./last-seen-times.js";
import { SqlRevocations } from "./revocation-rows.js";
import { type PostgresEventStoreOptions, StoreConnection } from "./store-connection.js";

export type { PostgresEventStoreOptions } from "./store-connection.js";

/**
 * EventStore on PostgreSQL through MikroORM (entities.ts, migrations/), or on
 * an embedded PGlite when no URL is given: one connection (store-connection.ts)
 * shared by the event log, the inboxes, lastSeen and the revocations, so all
 * of them share one database and one health.
 *
 * Guarantees: `start()` applies pending migrations and rejects with
 * StoreUnavailableError when the database cannot be reached; a query that
 * fails for want of a connection rejects with StoreUnavailableError
 * (retryable, cause kept) and makes `isReady()` false until a query or the
 * periodic probe succeeds again; any other failure is rethrown unchanged.
 * The hot paths are single statements with bound parameters (see event-sql.ts).
 */
export class PostgresEventStore implements EventStore {
  private readonly connection: StoreConnection;
  private readonly events: SqlEventLog;
  private readonly inboxes: SqlInbox;
  private readonly lastSeen: SqlLastSeen;
  private readonly revocations: SqlRevocations;

  constructor(options: PostgresEventStoreOptions) {
    this.connection = new StoreConnection(options);
    const tables = tablesIn(this.connection.schema);
    this.events = new SqlEventLog(this.connection, tables);
    this.inboxes = new SqlInbox(this.connection, tables);
    this.lastSeen = new SqlLastSeen(this.connection, tables);
    this.revocations = new SqlRevocations(this.connection, tables);
  }

  /** Connects and migrates; concurrent calls share one attempt, a started store returns at once. */
  start(): Promise<void> {
    return this.connection.start();
  }

  stop(): Promise<void> {
    return this.connection.stop();
  }

  isReady(): boolean {
    return this.connection.isReady();
  }

  append(events: readonly NewEvent[]): Promise<AppendOutcome[]> {
    return this.events.append(events);
  }

  history(channel: string, afterSeq: number, limit: number): Promise<HistoryPage> {
    return this.events.history(channel, afterSeq, limit);
  }

  lastEvent(channel: string): Promise<StoredEvent | undefined> {
    return this.events.lastEvent(channel);
  }

  latestSeq(): Promise<number> {
    return this.events.latestSeq();
  }

  prune(policies: readonly RetentionPolicy[], nowMs: number): Promise<number> {
    return this.events.prune(policies, nowMs);
  }

  inbox(userId: string, afterSeq: number, limit: number): Promise<Inbox> {
    return this.inboxes.inbox(userId, afterSeq, limit);
  }

  markRead(userId: string, upToSeq: number): Promise<number> {
    return this.inboxes.markRead(userId, upToSeq);
  }

  saveLastSeen(seen: ReadonlyMap<string, number>): Promise<void> {
    return this.lastSeen.saveLastSeen(seen);
  }

  loadLastSeen(users: readonly string[]): Promise<Map<string, number>> {
    return this.lastSeen.loadLastSeen(users);
  }

  saveRevocation(revocation: Revocation): Promise<void> {
    return this.revocations.saveRevocation(revocation);
  }

  loadRevocations(nowMs: number): Promise<Revocation[]> {
    return this.revocations.loadRevocations(nowMs);
  }

  pruneRevocations(nowMs: number): Promise<number> {
    return this.revocations.pruneRevocations(nowMs);
  }
}
