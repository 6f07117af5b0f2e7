import { checkLimit, checkSeq, inboxChannel, namespaceOf } from "../../core/event-store-input.js";
import type { Inbox } from "../../core/ports/event-store.js";
import { type EventRow, eventsOf, selectInbox, type Tables, toNumber, upsertReadMark } from "./event-sql.js";
import type { SqlRunner } from "./store-connection.js";

interface InboxRow extends EventRow {
  readonly read_up_to: unknown;
  readonly unread: unknown;
}

/**
 * Users' inboxes (`user:<id>` channels) with their read marks and unread
 * counts.
 *
 * Guarantees: a page, its read mark and its unread count come from one
 * statement (one snapshot); a read mark only moves forward, never past the
 * newest seq the inbox channel has had, even when a user's connections race
 * (see event-sql.ts `upsertReadMark`).
 */
export class SqlInbox {
  private readonly sql: { readonly inbox: string; readonly markRead: string };

  constructor(
    private readonly db: SqlRunner,
    tables: Tables,
  ) {
    this.sql = { inbox: selectInbox(tables), markRead: upsertReadMark(tables) };
  }

  async inbox(userId: string, afterSeq: number, limit: number): Promise<Inbox> {
    const channel = inboxChannel(userId);
    namespaceOf(channel);
    checkSeq("afterSeq", afterSeq);
    checkLimit(limit);
    const rows = await this.db.run<InboxRow>(this.sql.inbox, [channel, userId, channel, afterSeq, limit]);
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
    const rows = await this.db.run<{ read_up_to: unknown }>(this.sql.markRead, [userId, upToSeq, channel, channel]);
    return toNumber(rows[0]?.read_up_to);
  }
}
