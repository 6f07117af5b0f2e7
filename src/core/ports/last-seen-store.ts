/**
 * Where users' `lastSeen` survives restarts (docs/protocol.md §4 `status`): the
 * PostgreSQL store in production (`PostgresEventStore`, table `sobranie_last_seen`),
 * PGlite in embedded mode, a Map in tests. Held to test/contract/event-store.contract.ts.
 */
export interface LastSeenStore {
  /**
   * Upserts one time (ms since the epoch) per user in one statement. A time
   * earlier than the stored one is ignored: nodes may report out of order,
   * and `lastSeen` never moves back.
   */
  saveLastSeen(seen: ReadonlyMap<string, number>): Promise<void>;
  /** The stored times of those users that have one (at most a few hundred users per call). */
  loadLastSeen(users: readonly string[]): Promise<Map<string, number>>;
}
