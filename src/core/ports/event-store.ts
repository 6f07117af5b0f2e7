import { SobranieError } from "@sobranie/protocol/errors";
import type { LastSeenStore } from "./last-seen-store.js";
import type { RevocationStore } from "./revocation-store.js";

/**
 * Durable history of events in durable namespaces (docs/protocol.md §3): PostgreSQL
 * through MikroORM in production (`PostgresEventStore`), the same entities on an
 * embedded PGlite in embedded mode. Both pass test/contract/event-store.contract.ts.
 *
 * Sequence guarantee: `seq` is one strictly increasing number across all
 * channels, assigned in commit order (the worker is the only writer and
 * appends one batch at a time), so "everything after seq N" is well defined
 * for one channel and for a stream over several channels (SSE Last-Event-ID).
 */
export interface NewEvent {
  /** Unique event id (≤ 64 chars): an id seen before is stored once. */
  readonly id: string;
  /** `namespace:id`. */
  readonly channel: string;
  readonly type: string;
  readonly data: unknown;
  /** ISO-8601 time the backend says the event happened (or was received). */
  readonly occurredAt: string;
  /** Sender, for client publishes. */
  readonly user?: string | undefined;
}

export interface StoredEvent extends NewEvent {
  readonly seq: number;
}

export interface AppendOutcome {
  readonly event: StoredEvent;
  /** True when the id was stored before: `event` is the first stored copy. */
  readonly duplicate: boolean;
}

export interface HistoryPage {
  /** Events with seq > afterSeq, ascending, at most `limit`. */
  readonly events: StoredEvent[];
  /**
   * False when retention removed events of this channel after `afterSeq`:
   * the caller answers `recovered: false` and delivers what remains.
   */
  readonly complete: boolean;
}

export interface RetentionPolicy {
  readonly namespace: string;
  /** Events older than this are removed. */
  readonly maxAgeMs: number;
  /** At most this many newest events are kept per channel. */
  readonly maxPerChannel: number;
}

export interface Inbox {
  readonly events: StoredEvent[];
  /** Events in `user:<id>` after `readUpTo`. */
  readonly unread: number;
  readonly readUpTo: number;
}

/** The store also keeps users' lastSeen and the revocations (same database, same health). */
export interface EventStore extends LastSeenStore, RevocationStore {
  /** Connects and applies pending migrations. */
  start(): Promise<void>;
  /** Idempotent. */
  stop(): Promise<void>;
  isReady(): boolean;
  /**
   * Stores a batch in one transaction; outcomes are in input order. Events
   * whose id is already stored (or repeated within the batch) are not stored
   * again and come back with `duplicate: true` and the first copy's seq.
   */
  append(events: readonly NewEvent[]): Promise<AppendOutcome[]>;
  /** The channel's events after `afterSeq`. */
  history(channel: string, afterSeq: number, limit: number): Promise<HistoryPage>;
  /** The channel's stored event with the highest seq; undefined when it has none (never had one, or retention removed them). */
  lastEvent(channel: string): Promise<StoredEvent | undefined>;
  /**
   * The highest seq of a stored event, 0 when there is none: every event
   * committed later gets a higher one. (Retention removing the newest events
   * can make it smaller than a seq handed out earlier, never larger.)
   */
  latestSeq(): Promise<number>;
  /** Applies retention; returns how many events were removed. */
  prune(policies: readonly RetentionPolicy[], nowMs: number): Promise<number>;
  /** The user's inbox (`user:<userId>`), oldest first, after `afterSeq`. */
  inbox(userId: string, afterSeq: number, limit: number): Promise<Inbox>;
  /**
   * Moves the read mark forward (never back) and never past the newest seq
   * the user's `user:<id>` channel has had (its newest stored event, or the
   * highest seq retention removed from it): a mark beyond that would count
   * the user's next events as read before they exist. Returns the mark now
   * in force, which callers answer: `upToSeq` clamped, and 0 for a user with
   * no events yet.
   */
  markRead(userId: string, upToSeq: number): Promise<number>;
}

export class StoreUnavailableError extends SobranieError {
  override readonly name = "StoreUnavailableError";
  readonly code = "unavailable";
  readonly retryable = true;
  constructor(message = "event store is not reachable", options?: { cause?: unknown }) {
    super(message, options);
  }
}
