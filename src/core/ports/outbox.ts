/**
 * The PostgreSQL outbox as the relay sees it (`PgOutbox` in production): rows
 * that application transactions wrote through the outbox trigger functions,
 * each one event for `sobranie.events`, plus a wake-up signal (LISTEN
 * `sobranie_outbox`). The signal is only a hint: it is lost while nobody
 * listens, so the relay also reads on start, after every re-LISTEN and on a
 * timer. The rows are the truth.
 */
export interface OutboxRow {
  /** Outbox row id: the order rows are relayed in. */
  readonly id: string;
  /** `namespace.id.type` (docs/protocol.md §3). */
  readonly routingKey: string;
  /** Envelope id and AMQP message_id; downstream drops a second copy by it. */
  readonly eventId: string;
  /** The JSON envelope, ready to publish. */
  readonly body: string;
  readonly createdAtMs: number;
}

export interface OutboxSignal {
  /** A NOTIFY arrived: rows may be waiting. */
  notified(): void;
  /** LISTEN is (again) in place: NOTIFYs sent meanwhile were lost, so read now. */
  listening(): void;
}

/** What happened to one claim. `busy`: another relay holds the claim (it relays these rows). */
export type RelayBatchResult = { readonly busy: true } | { readonly busy: false; readonly relayed: number };

export interface Outbox {
  /** Opens the connection pool and the LISTEN connection; re-LISTENs after a loss (then calls `listening`). */
  start(signal: OutboxSignal): Promise<void>;
  /** Idempotent. */
  stop(): Promise<void>;
  isListening(): boolean;
  /**
   * Claims up to `limit` unpublished rows in id order, passes them to
   * `publish`, and marks them published only once `publish` resolved, all in
   * one transaction under a lock that one relay holds at a time (so a fleet
   * of workers relays in order and never the same row concurrently). A
   * rejected `publish` marks nothing: the rows are read again (at-least-once).
   */
  relayBatch(limit: number, publish: (rows: readonly OutboxRow[]) => Promise<void>): Promise<RelayBatchResult>;
  /** Deletes published rows created before `beforeMs`, at most `limit` per call; returns how many. */
  prunePublished(beforeMs: number, limit: number): Promise<number>;
}

/** Where the relay publishes: `sobranie.events` with a publisher confirm. */
export interface EventsPublisher {
  /** Resolves once the broker confirmed; rejects (retryable) while the broker is away. */
  publish(message: { routingKey: string; body: string; messageId: string; timestampMs: number }): Promise<void>;
}
