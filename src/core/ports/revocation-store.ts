/**
 * Revocations that outlive a process (docs/protocol.md §11): the
 * PostgreSQL store in production (`PostgresEventStore`, table
 * `sobranie_revocations`), PGlite in embedded mode, a Map in tests. Held to
 * test/contract/event-store.contract.ts.
 *
 * Three kinds, all per user: one token by its `jti`; every token issued
 * before a time; and a channel that tokens issued before a time may no
 * longer subscribe to (a removed room member). Each entry carries when it
 * stops mattering (`expiresAtMs`): past it no token it matches is still
 * valid, and it may be pruned.
 */
export type Revocation =
  | { readonly kind: "token"; readonly userId: string; readonly tokenId: string; readonly expiresAtMs: number }
  | { readonly kind: "issued_before"; readonly userId: string; readonly issuedBeforeMs: number; readonly expiresAtMs: number }
  | { readonly kind: "channel"; readonly userId: string; readonly channel: string; readonly issuedBeforeMs: number; readonly expiresAtMs: number };

export interface RevocationStore {
  /**
   * Idempotent upsert, keyed by user, kind and token id or channel: saving an
   * entry again (every node that receives the command saves it) keeps the
   * later `issuedBeforeMs` and the later `expiresAtMs` of the two, so
   * commands applied twice or out of order never move an entry back.
   */
  saveRevocation(revocation: Revocation): Promise<void>;
  /** Every entry that still matters at `nowMs` (expiresAtMs > nowMs). */
  loadRevocations(nowMs: number): Promise<Revocation[]>;
  /** Deletes the entries that stopped mattering by `nowMs`; returns how many. */
  pruneRevocations(nowMs: number): Promise<number>;
}
