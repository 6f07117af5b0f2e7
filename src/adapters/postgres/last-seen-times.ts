import type { LastSeenStore } from "../../core/ports/last-seen-store.js";
import { selectLastSeen, type Tables, toNumber, upsertLastSeen } from "./event-sql.js";
import type { SqlRunner } from "./store-connection.js";

/**
 * Users' lastSeen times, one row per user.
 *
 * Guarantees: a batch is saved in one statement and an earlier time never
 * replaces a later one; times are kept to the millisecond (timestamptz).
 */
export class SqlLastSeen implements LastSeenStore {
  private readonly sql: { readonly save: string; readonly load: string };

  constructor(
    private readonly db: SqlRunner,
    tables: Tables,
  ) {
    this.sql = { save: upsertLastSeen(tables), load: selectLastSeen(tables) };
  }

  async saveLastSeen(seen: ReadonlyMap<string, number>): Promise<void> {
    if (seen.size === 0) return;
    const batch: Record<string, string> = {};
    for (const [user, atMs] of seen) batch[user] = new Date(atMs).toISOString();
    await this.db.run(this.sql.save, [JSON.stringify(batch)]);
  }

  async loadLastSeen(users: readonly string[]): Promise<Map<string, number>> {
    if (users.length === 0) return new Map();
    const rows = await this.db.run<{ user_id: unknown; at_ms: unknown }>(this.sql.load, [JSON.stringify(users)]);
    return new Map(rows.map((row) => [String(row.user_id), toNumber(row.at_ms)]));
  }
}
