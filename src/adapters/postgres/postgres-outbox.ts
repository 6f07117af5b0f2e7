import { MikroORM } from "@mikro-orm/core";
import type { AbstractSqlDriver, Knex } from "@mikro-orm/postgresql";
import { fullJitterDelayMs, sleep, type BackoffOptions } from "@sobranie/protocol/runtime/backoff";
import { type Clock, systemClock } from "@sobranie/protocol/runtime/clock";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Outbox, OutboxRow, OutboxSignal, RelayBatchResult } from "../../core/ports/outbox.js";
import { OutboxEntity } from "./entities.js";
import { toNumber } from "./event-sql.js";
import { DEFAULT_SCHEMA, ormOptions, SCHEMA_NAME_PATTERN } from "./orm-config.js";

export interface PostgresOutboxOptions {
  /** The PostgreSQL holding the outbox (migrated by the event store: same migrations). */
  readonly databaseUrl: string;
  readonly schema?: string | undefined;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Backoff between LISTEN reconnect attempts. */
  readonly reconnect?: BackoffOptions;
  readonly connectTimeoutMs?: number;
}

/** The NOTIFY channel the outbox trigger functions signal (Migration20261126000000Outbox). */
export const OUTBOX_NOTIFY_CHANNEL = "sobranie_outbox";

const DEFAULT_RECONNECT: BackoffOptions = { initialDelayMs: 100, maxDelayMs: 5_000 };
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** One connection for claims, one spare for pruning: the relay runs one claim at a time. */
const POOL_MAX = 2;

/** The part of pg's Client the LISTEN connection uses (knex hands out a raw pg Client). */
interface ListenClient {
  query(text: string): Promise<unknown>;
  on(event: "notification", listener: (message: { channel: string; payload?: string }) => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "end", listener: () => void): unknown;
}

interface ClaimedRow {
  readonly id: unknown;
  readonly routing_key: unknown;
  readonly event_id: unknown;
  readonly body: unknown;
  readonly created_ms: unknown;
}

/**
 * The outbox on PostgreSQL, through MikroORM's knex (a small pool of its
 * own) plus one dedicated connection that LISTENs. The LISTEN connection is
 * outside the pool on purpose: a pooled connection may be recycled, and its
 * LISTEN would silently go with it.
 *
 * A claim is one transaction: `pg_try_advisory_xact_lock` (one relay at a
 * time per schema, so a fleet of workers publishes in id order and never the
 * same row twice at once), select the oldest unpublished rows through the
 * partial index, publish, mark them by id. Marking by the ids read, not by an
 * id range: a row of a transaction that commits meanwhile may fall inside the
 * range without having been read.
 */
export class PostgresOutbox implements Outbox {
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly table: string;
  private readonly lockName: string;
  private readonly abort = new AbortController();
  private orm: MikroORM<AbstractSqlDriver> | undefined;
  private signal: OutboxSignal | undefined;
  private listener: ListenClient | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: PostgresOutboxOptions) {
    const schema = options.schema ?? DEFAULT_SCHEMA;
    if (!SCHEMA_NAME_PATTERN.test(schema)) throw new RangeError(`schema must match ${SCHEMA_NAME_PATTERN}, got ${JSON.stringify(schema)}`);
    this.table = `"${schema}"."${OutboxEntity.meta.tableName ?? ""}"`;
    this.lockName = `sobranie_outbox:${schema}`;
    this.log = options.logger.child({ component: "outbox" });
    this.clock = options.clock ?? systemClock;
  }

  /** Resolves after the first LISTEN attempt; a failed one is retried in the background (then `listening` fires). */
  async start(signal: OutboxSignal): Promise<void> {
    if (this.orm) return;
    this.signal = signal;
    const options = ormOptions(
      { databaseUrl: this.options.databaseUrl, schema: this.options.schema, connectTimeoutMs: this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS },
      this.log,
    );
    this.orm = await MikroORM.init({ ...options, pool: { min: 0, max: POOL_MAX } });
    if (!(await this.listen())) void this.relisten();
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.abort.abort();
      await this.dropListener();
      await this.orm?.close(true);
      this.orm = undefined;
    })();
    return this.stopping;
  }

  isListening(): boolean {
    return this.listener !== undefined;
  }

  async relayBatch(limit: number, publish: (rows: readonly OutboxRow[]) => Promise<void>): Promise<RelayBatchResult> {
    return this.knex().transaction(async (trx) => {
      const lock = rowsOf<{ locked: unknown }>(await trx.raw(`select pg_try_advisory_xact_lock(hashtext(?)::bigint) as "locked"`, [this.lockName]));
      if (lock[0]?.locked !== true) return { busy: true };
      const claimed = rowsOf<ClaimedRow>(
        await trx.raw(
          `select "id"::text as "id", "routing_key", "event_id", "body"::text as "body", ` +
            `(extract(epoch from "created_at") * 1000)::bigint as "created_ms" ` +
            // "o"."id": a bare "id" here would sort by the text output column ("10" before "2").
            `from ${this.table} o where "published_at" is null order by o."id" limit ?`,
          [limit],
        ),
      );
      if (claimed.length === 0) return { busy: false, relayed: 0 };
      const rows = claimed.map(toRow);
      await publish(rows);
      await trx.raw(`update ${this.table} set "published_at" = now() where "id" in (select jsonb_array_elements_text(?::jsonb)::bigint)`, [
        JSON.stringify(rows.map((row) => row.id)),
      ]);
      return { busy: false, relayed: rows.length };
    });
  }

  async prunePublished(beforeMs: number, limit: number): Promise<number> {
    // Walks the primary key from the oldest row: old published rows come first, so the scan stops early.
    const result = await this.knex().raw(
      `delete from ${this.table} where "id" in (select "id" from ${this.table} ` +
        `where "published_at" is not null and "created_at" < ?::timestamptz order by "id" limit ?)`,
      [new Date(beforeMs).toISOString(), limit],
    );
    return toNumber((result as { rowCount?: unknown }).rowCount ?? 0);
  }

  private knex(): Knex {
    if (!this.orm) throw new Error("outbox is not started");
    return this.orm.em.getConnection().getKnex();
  }

  /** One LISTEN attempt; true when listening. */
  private async listen(): Promise<boolean> {
    let client: ListenClient | undefined;
    try {
      client = (await this.knex().client.acquireRawConnection()) as ListenClient;
      const connected = client;
      let lost = false;
      const onLost = (error?: Error): void => {
        if (lost) return;
        lost = true;
        if (this.listener !== connected) return;
        this.listener = undefined;
        if (this.abort.signal.aborted) return;
        this.log.warn({ err: error }, "outbox LISTEN connection lost; reconnecting (rows are swept after)");
        void this.destroy(connected);
        void this.relisten();
      };
      client.on("error", (error) => onLost(error));
      client.on("end", () => onLost());
      client.on("notification", (message) => {
        if (message.channel === OUTBOX_NOTIFY_CHANNEL) this.signal?.notified();
      });
      await client.query(`listen "${OUTBOX_NOTIFY_CHANNEL}"`);
      if (this.abort.signal.aborted || lost) {
        await this.destroy(client);
        return false;
      }
      this.listener = client;
      this.log.info({}, "outbox: listening");
      // Anything committed before LISTEN took effect sent its NOTIFY to nobody.
      this.signal?.listening();
      return true;
    } catch (error) {
      if (client) await this.destroy(client);
      if (!this.abort.signal.aborted) this.log.warn({ err: error }, "outbox LISTEN failed");
      return false;
    }
  }

  private async relisten(): Promise<void> {
    const backoff = this.options.reconnect ?? DEFAULT_RECONNECT;
    for (let attempt = 0; !this.abort.signal.aborted; attempt += 1) {
      await sleep(this.clock, Math.max(backoff.initialDelayMs, fullJitterDelayMs(backoff, attempt)), this.abort.signal);
      if (this.abort.signal.aborted || this.listener) return;
      if (await this.listen()) return;
    }
  }

  private async dropListener(): Promise<void> {
    const client = this.listener;
    this.listener = undefined;
    if (client) await this.destroy(client);
  }

  private async destroy(client: ListenClient): Promise<void> {
    await this.orm?.em.getConnection().getKnex().client.destroyRawConnection(client).catch(() => undefined);
  }
}

function toRow(row: ClaimedRow): OutboxRow {
  return {
    id: String(row.id),
    routingKey: String(row.routing_key),
    eventId: String(row.event_id),
    body: String(row.body),
    createdAtMs: toNumber(row.created_ms),
  };
}

function rowsOf<Row>(result: unknown): Row[] {
  const rows = (result as { rows?: unknown } | null)?.rows;
  if (!Array.isArray(rows)) throw new TypeError("unexpected result shape from the database driver");
  return rows as Row[];
}
