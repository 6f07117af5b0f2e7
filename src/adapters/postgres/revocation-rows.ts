import type { Revocation, RevocationStore } from "../../core/ports/revocation-store.js";
import { revocationSubject } from "../../core/revocations.js";
import { deleteExpiredRevocations, selectRevocations, type Tables, toNumber, upsertRevocation } from "./event-sql.js";
import type { SqlRunner } from "./store-connection.js";

interface RevocationRow {
  readonly user_id: unknown;
  readonly kind: unknown;
  readonly subject: unknown;
  readonly issued_before_ms: unknown;
  readonly expires_at_ms: unknown;
}

/**
 * The revocations table, one row per user, kind and subject (token id,
 * channel, or empty for `issued_before`).
 *
 * Guarantees: saving is an idempotent upsert keeping the later cut-off and
 * the later expiry; loading returns only entries that still matter, and skips
 * a kind this version does not know (written by a newer one).
 */
export class SqlRevocations implements RevocationStore {
  private readonly sql: { readonly save: string; readonly load: string; readonly prune: string };

  constructor(
    private readonly db: SqlRunner,
    tables: Tables,
  ) {
    this.sql = { save: upsertRevocation(tables), load: selectRevocations(tables), prune: deleteExpiredRevocations(tables) };
  }

  async saveRevocation(revocation: Revocation): Promise<void> {
    const issuedBeforeMs = revocation.kind === "token" ? null : revocation.issuedBeforeMs;
    const expiresAt = new Date(revocation.expiresAtMs).toISOString();
    await this.db.run(this.sql.save, [revocation.userId, revocation.kind, revocationSubject(revocation), issuedBeforeMs, expiresAt]);
  }

  async loadRevocations(nowMs: number): Promise<Revocation[]> {
    const rows = await this.db.run<RevocationRow>(this.sql.load, [new Date(nowMs).toISOString()]);
    return rows.flatMap((row) => toRevocation(row) ?? []);
  }

  async pruneRevocations(nowMs: number): Promise<number> {
    const [row] = await this.db.run<{ n: unknown }>(this.sql.prune, [new Date(nowMs).toISOString()]);
    return toNumber(row?.n ?? 0);
  }
}

/** A stored row back as a Revocation; a kind this version does not know is undefined. */
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
