import type { StoredEvent } from "../../core/ports/event-store.js";
import { ChannelRetentionEntity, InboxReadEntity, LastSeenEntity, RevocationEntity, StoredEventEntity } from "./entities.js";

/**
 * The store's hand-written SQL. Table names come from the entities (the one
 * schema source); every value travels as a bound parameter. Batches travel as
 * ONE jsonb parameter expanded server-side with jsonb_to_recordset: a fixed
 * statement text whatever the batch size, no 65,535-parameter ceiling, and
 * no client-side literal formatting.
 *
 * Timestamps are rendered by PostgreSQL in `Date#toISOString()` form and seqs
 * are converted with Number(), so pg (strings for int8) and PGlite (its own
 * parsers) yield identical events.
 */

/** `"schema"."table"` for each table, for one configured schema. */
export interface Tables {
  readonly event: string;
  readonly inboxRead: string;
  readonly watermark: string;
  readonly lastSeen: string;
  readonly revocation: string;
}

export function tablesIn(schema: string): Tables {
  const quote = (table: string | undefined): string => `"${schema}"."${table ?? ""}"`;
  return {
    event: quote(StoredEventEntity.meta.tableName),
    inboxRead: quote(InboxReadEntity.meta.tableName),
    watermark: quote(ChannelRetentionEntity.meta.tableName),
    lastSeen: quote(LastSeenEntity.meta.tableName),
    revocation: quote(RevocationEntity.meta.tableName),
  };
}

const ISO_MS = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;

/** Columns of a stored event, aliased as EventRow expects; `e` is the event table. */
const EVENT_COLUMNS =
  `e."seq", e."event_id", e."channel", e."type", e."data", e."user_id", ` +
  `to_char(e."occurred_at" at time zone 'UTC', ${ISO_MS}) as "occurred_at"`;

export interface EventRow {
  readonly seq: unknown;
  readonly event_id: unknown;
  readonly channel: unknown;
  readonly type: unknown;
  readonly data: unknown;
  readonly user_id: unknown;
  readonly occurred_at: unknown;
}

/** One element of the jsonb batch parameter of `insertBatch`. */
export interface BatchRow {
  readonly i: number;
  readonly event_id: string;
  readonly channel: string;
  readonly namespace: string;
  readonly type: string;
  readonly data: unknown;
  readonly user_id: string | null;
  readonly occurred_at: string;
}

/**
 * Inserts the batch in input order (seqs ascend with `i`). ON CONFLICT DO
 * NOTHING makes a re-delivered id a no-op instead of an error that would
 * abort the whole batch; a concurrent insert of the same id waits for the
 * other transaction and then counts as existing. Params: batch json.
 */
export function insertBatch(t: Tables): string {
  return (
    `insert into ${t.event} ("event_id", "channel", "namespace", "type", "data", "user_id", "occurred_at") ` +
    // jsonb_to_recordset turns a JSON null into SQL NULL; the column keeps it as jsonb `null`.
    `select x.event_id, x.channel, x.namespace, x.type, coalesce(x.data, 'null'::jsonb), x.user_id, x.occurred_at ` +
    `from jsonb_to_recordset(?::jsonb) as x(i int, event_id text, channel text, namespace text, type text, ` +
    `data jsonb, user_id text, occurred_at timestamptz) ` +
    `order by x.i ` +
    `on conflict ("event_id") do nothing ` +
    `returning "seq", "event_id"`
  );
}

/** The stored copies of the given ids. Params: ids json array. */
export function selectByIds(t: Tables): string {
  return `select ${EVENT_COLUMNS} from ${t.event} e where e."event_id" in (select jsonb_array_elements_text(?::jsonb))`;
}

/**
 * One channel's page after a seq, plus the channel's retention watermark,
 * read in one statement so both come from the same snapshot. Always yields
 * one row at least (event columns null when the page is empty).
 * Params: channel, channel, afterSeq, limit.
 */
export function selectHistory(t: Tables): string {
  return (
    `select w."pruned_up_to", p.* from ` +
    `(select coalesce((select "pruned_up_to" from ${t.watermark} where "channel" = ?), 0) as "pruned_up_to") w ` +
    `left join lateral (select ${EVENT_COLUMNS} from ${t.event} e ` +
    `where e."channel" = ? and e."seq" > ? order by e."seq" limit ?) p on true ` +
    `order by p."seq"`
  );
}

/** One channel's event with the highest seq (no row when it has none); the (channel, seq) index makes it one probe. Params: channel. */
export function selectLastEvent(t: Tables): string {
  return `select ${EVENT_COLUMNS} from ${t.event} e where e."channel" = ? order by e."seq" desc limit 1`;
}

/** The highest stored seq (0 when empty); the primary key makes it one index probe. */
export function selectLatestSeq(t: Tables): string {
  return `select coalesce(max("seq"), 0) as "seq" from ${t.event}`;
}

/**
 * The inbox page, the read mark and the unread count in one statement.
 * Params: userId, channel, channel, afterSeq, limit.
 */
export function selectInbox(t: Tables): string {
  return (
    `select m."read_up_to", ` +
    `(select count(*) from ${t.event} c where c."channel" = ? and c."seq" > m."read_up_to") as "unread", p.* from ` +
    `(select coalesce((select "read_up_to" from ${t.inboxRead} where "user_id" = ?), 0) as "read_up_to") m ` +
    `left join lateral (select ${EVENT_COLUMNS} from ${t.event} e ` +
    `where e."channel" = ? and e."seq" > ? order by e."seq" limit ?) p on true ` +
    `order by p."seq"`
  );
}

/**
 * Upsert that never moves the mark back (GREATEST), even when two
 * connections of the same user race, and never past the newest seq the
 * inbox channel has had (LEAST with its newest event or retention
 * watermark, 0 when it has neither; both are index probes).
 * Params: userId, upToSeq, channel, channel.
 */
export function upsertReadMark(t: Tables): string {
  return (
    `insert into ${t.inboxRead} as r ("user_id", "read_up_to", "updated_at") ` +
    `select ?, least(?::bigint, greatest(` +
    `coalesce((select max(e."seq") from ${t.event} e where e."channel" = ?), 0), ` +
    `coalesce((select w."pruned_up_to" from ${t.watermark} w where w."channel" = ?), 0))), now() ` +
    `on conflict ("user_id") do update set ` +
    `"read_up_to" = greatest(r."read_up_to", excluded."read_up_to"), ` +
    `"updated_at" = case when excluded."read_up_to" > r."read_up_to" then now() else r."updated_at" end ` +
    `returning "read_up_to"`
  );
}

/**
 * Upserts a batch of lastSeen times; an earlier time never replaces a later
 * one (GREATEST). Params: json object {user: ISO time}.
 */
export function upsertLastSeen(t: Tables): string {
  return (
    `insert into ${t.lastSeen} as s ("user_id", "last_seen_at") ` +
    `select x.key, x.value::timestamptz from jsonb_each_text(?::jsonb) as x ` +
    `on conflict ("user_id") do update set "last_seen_at" = greatest(s."last_seen_at", excluded."last_seen_at")`
  );
}

/**
 * One revocation, idempotently: the later cut-off and the later expiry win.
 * Params: user, kind, subject, issuedBeforeMs (or null), expiresAt ISO.
 */
export function upsertRevocation(t: Tables): string {
  return (
    `insert into ${t.revocation} as r ("user_id", "kind", "subject", "issued_before_ms", "expires_at") values (?, ?, ?, ?, ?::timestamptz) ` +
    `on conflict ("user_id", "kind", "subject") do update set ` +
    `"issued_before_ms" = greatest(r."issued_before_ms", excluded."issued_before_ms"), "expires_at" = greatest(r."expires_at", excluded."expires_at")`
  );
}

/** Revocations still mattering, expiry as epoch ms. Params: now ISO. */
export function selectRevocations(t: Tables): string {
  return (
    `select "user_id", "kind", "subject", "issued_before_ms", (extract(epoch from "expires_at") * 1000)::bigint as "expires_at_ms" ` +
    `from ${t.revocation} where "expires_at" > ?::timestamptz`
  );
}

/** Deletes revocations past their expiry; one row `n`, how many. Params: now ISO. */
export function deleteExpiredRevocations(t: Tables): string {
  return `with gone as (delete from ${t.revocation} where "expires_at" <= ?::timestamptz returning 1) select count(*) as "n" from gone`;
}

/** The stored lastSeen of the given users, as epoch milliseconds. Params: ids json array. */
export function selectLastSeen(t: Tables): string {
  return (
    `select "user_id", (extract(epoch from "last_seen_at") * 1000)::bigint as "at_ms" from ${t.lastSeen} ` +
    `where "user_id" in (select jsonb_array_elements_text(?::jsonb))`
  );
}

/**
 * Deletes one namespace's events that are too old or beyond the newest
 * `maxPerChannel` of their channel, and raises each touched channel's
 * watermark to the highest seq removed, in one statement. Params: namespace
 * and cutoff ISO time (with age), namespace and maxPerChannel (with count).
 */
export function pruneNamespace(t: Tables, byAge: boolean, byCount: boolean): string {
  const doomed: string[] = [];
  if (byAge) {
    doomed.push(`select "seq", "channel" from ${t.event} where "namespace" = ? and "occurred_at" < ?::timestamptz`);
  }
  if (byCount) {
    doomed.push(
      `select r."seq", r."channel" from (select "seq", "channel", ` +
        `row_number() over (partition by "channel" order by "seq" desc) as rn ` +
        `from ${t.event} where "namespace" = ?) r where r.rn > ?`,
    );
  }
  return (
    `with doomed as (${doomed.join(" union ")}), ` +
    `removed as (delete from ${t.event} e using doomed d where e."seq" = d."seq" returning e."seq", e."channel"), ` +
    `marks as (insert into ${t.watermark} as w ("channel", "pruned_up_to") ` +
    `select "channel", max("seq") from removed group by "channel" ` +
    `on conflict ("channel") do update set "pruned_up_to" = greatest(w."pruned_up_to", excluded."pruned_up_to")) ` +
    `select count(*) as "removed" from removed`
  );
}

export function toNumber(value: unknown): number {
  const number = typeof value === "number" ? value : Number(value);
  if (!Number.isSafeInteger(number)) throw new TypeError(`expected an integer from the database, got ${String(value)}`);
  return number;
}

export function toEvent(row: EventRow): StoredEvent {
  const event = {
    seq: toNumber(row.seq),
    id: String(row.event_id),
    channel: String(row.channel),
    type: String(row.type),
    data: row.data,
    occurredAt: String(row.occurred_at),
  };
  return row.user_id === null || row.user_id === undefined ? event : { ...event, user: String(row.user_id) };
}

/** The events of a page's rows: an empty page is one row of counters with null event columns. */
export function eventsOf(rows: readonly EventRow[]): StoredEvent[] {
  return rows.filter((row) => row.seq !== null && row.seq !== undefined).map(toEvent);
}
