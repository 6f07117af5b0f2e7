import type { PGlite } from "@electric-sql/pglite";
import { MikroORM } from "@mikro-orm/core";
import type { AbstractSqlDriver, Knex } from "@mikro-orm/postgresql";
import { StoreUnavailableError } from "../../core/ports/event-store.js";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import { isConnectionFailure, redactUrl } from "./connection-errors.js";
import { applyMigrations } from "./migrate.js";
import { createPGlite, DEFAULT_SCHEMA, ormOptions, SCHEMA_NAME_PATTERN } from "./orm-config.js";

export interface PostgresEventStoreOptions {
  /** PostgreSQL URL. Unset: the embedded PGlite (same entities, same migrations). */
  readonly databaseUrl?: string | undefined;
  /** PostgreSQL schema for all tables (created if missing); default `public`. */
  readonly schema?: string | undefined;
  /** PGlite only: data directory; unset keeps the database in memory. */
  readonly pgliteDataDir?: string | undefined;
  /**
   * PGlite only: an instance owned by the caller instead of one the store
   * creates (and closes). Lets tests share one embedded database between
   * per-test schemas; stores sharing it must not run at the same time, since
   * PGlite is one session and their transactions would interleave.
   */
  readonly pglite?: PGlite | undefined;
  readonly logger: Logger;
  /** Logs every statement (MikroORM's and the store's own) at debug level. */
  readonly debug?: boolean | undefined;
  /** Period of the readiness probe (`select 1`); 0 disables it. Default 5000. */
  readonly healthCheckIntervalMs?: number | undefined;
  /** Bound on opening one PostgreSQL connection. Default 5000. */
  readonly connectTimeoutMs?: number | undefined;
}

/** What the store's parts need from the database: one statement, or a transaction around several. */
export interface SqlRunner {
  run<Row>(sql: string, bindings: readonly Knex.RawBinding[], trx?: Knex.Transaction): Promise<Row[]>;
  transaction<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T>;
}

const DEFAULT_HEALTH_CHECK_INTERVAL_MS = 5_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/**
 * The event store's database: MikroORM on PostgreSQL, or on an embedded PGlite
 * when no URL is given, migrated on start and probed while running.
 *
 * Guarantees: `start()` applies pending migrations and rejects with
 * StoreUnavailableError when the database cannot be reached; concurrent
 * starts share one attempt and `stop()` waits for it. A statement that fails
 * for want of a connection rejects with StoreUnavailableError (retryable,
 * cause kept) and makes `isReady()` false until a statement or the periodic
 * probe succeeds again; any other failure is rethrown unchanged.
 */
export class StoreConnection implements SqlRunner {
  readonly schema: string;
  private readonly log: Logger;
  private orm: MikroORM<AbstractSqlDriver> | undefined;
  /** The PGlite this connection created and must close; undefined for PostgreSQL or a caller's instance. */
  private pglite: PGlite | undefined;
  private healthy = false;
  private probe: NodeJS.Timeout | undefined;
  private probing = false;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: PostgresEventStoreOptions) {
    if (options.schema !== undefined && !SCHEMA_NAME_PATTERN.test(options.schema)) {
      throw new RangeError(`schema must match ${SCHEMA_NAME_PATTERN}, got ${JSON.stringify(options.schema)}`);
    }
    this.schema = options.schema ?? DEFAULT_SCHEMA;
    this.log = options.logger.child({ component: "event-store" });
  }

  /** Connects and migrates; concurrent calls share one attempt, a started store returns at once. */
  start(): Promise<void> {
    this.starting ??= this.open().catch((error: unknown) => {
      this.starting = undefined;
      throw error;
    });
    return this.starting;
  }

  stop(): Promise<void> {
    this.stopping ??= this.close().finally(() => {
      this.stopping = undefined;
    });
    return this.stopping;
  }

  isReady(): boolean {
    return this.orm !== undefined && this.healthy;
  }

  async transaction<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    try {
      return await this.knex().transaction(work);
    } catch (error) {
      throw this.failure(error);
    }
  }

  /** Runs one statement; records connection health from its outcome. */
  async run<Row>(sql: string, bindings: readonly Knex.RawBinding[], trx?: Knex.Transaction): Promise<Row[]> {
    const startedMs = this.options.debug ? performance.now() : 0;
    try {
      const result: unknown = await (trx ?? this.knex()).raw(sql, bindings);
      this.setHealthy(true);
      if (this.options.debug) this.log.debug({ sql, ms: performance.now() - startedMs }, "query");
      return rowsOf<Row>(result);
    } catch (error) {
      throw this.failure(error);
    }
  }

  private async open(): Promise<void> {
    const startedMs = performance.now();
    const { databaseUrl } = this.options;
    const owned =
      databaseUrl === undefined && this.options.pglite === undefined ? createPGlite(this.options.pgliteDataDir) : undefined;
    const pglite = databaseUrl === undefined ? (this.options.pglite ?? owned) : undefined;
    let orm: MikroORM<AbstractSqlDriver> | undefined;
    try {
      const target = {
        databaseUrl,
        pgliteDataDir: this.options.pgliteDataDir,
        schema: this.options.schema,
        debug: this.options.debug,
        connectTimeoutMs: this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      };
      orm = await MikroORM.init(ormOptions(target, this.log, pglite));
      const check = await orm.checkConnection();
      if (!check.ok) {
        throw new StoreUnavailableError(`cannot reach ${this.describeTarget()}: ${check.reason ?? "unknown reason"}`, {
          cause: check.error,
        });
      }
      const applied = await applyMigrations(orm, this.schema, databaseUrl !== undefined);
      this.orm = orm;
      this.pglite = owned;
      this.healthy = true;
      this.startProbe();
      this.log.info(
        { target: this.describeTarget(), schema: this.schema, applied, startMs: Math.round(performance.now() - startedMs) },
        "event store started",
      );
    } catch (error) {
      await orm?.close(true).catch(() => undefined);
      await owned?.close().catch(() => undefined);
      if (error instanceof StoreUnavailableError) throw error;
      if (isConnectionFailure(error)) {
        throw new StoreUnavailableError(`cannot reach ${this.describeTarget()}: ${messageOf(error)}`, { cause: error });
      }
      throw error;
    }
  }

  private async close(): Promise<void> {
    const starting = this.starting;
    this.starting = undefined;
    await starting?.catch(() => undefined);
    clearInterval(this.probe);
    this.probe = undefined;
    this.healthy = false;
    const { orm, pglite } = this;
    this.orm = undefined;
    this.pglite = undefined;
    // The ORM first: it may still hand PGlite a query while draining.
    await orm?.close();
    await pglite?.close();
  }

  private startProbe(): void {
    const intervalMs = this.options.healthCheckIntervalMs ?? DEFAULT_HEALTH_CHECK_INTERVAL_MS;
    if (intervalMs <= 0) return;
    this.probe = setInterval(() => void this.checkHealth(), intervalMs);
    this.probe.unref();
  }

  private async checkHealth(): Promise<void> {
    if (this.probing || !this.orm) return;
    this.probing = true;
    try {
      await this.run("select 1", []);
    } catch {
      // run() already recorded the outcome in `healthy`.
    } finally {
      this.probing = false;
    }
  }

  private knex(): Knex {
    if (!this.orm) throw new StoreUnavailableError("event store is not started");
    return this.orm.em.getConnection().getKnex();
  }

  private failure(error: unknown): unknown {
    if (error instanceof StoreUnavailableError) return error;
    if (!isConnectionFailure(error)) return error;
    this.setHealthy(false);
    return new StoreUnavailableError(`event store query failed: ${messageOf(error)}`, { cause: error });
  }

  private setHealthy(healthy: boolean): void {
    if (healthy === this.healthy || !this.orm) return;
    this.healthy = healthy;
    if (healthy) this.log.info({}, "event store reachable again");
    else this.log.warn({ target: this.describeTarget() }, "event store unreachable");
  }

  private describeTarget(): string {
    const { databaseUrl, pgliteDataDir } = this.options;
    if (databaseUrl !== undefined) return redactUrl(databaseUrl);
    return pgliteDataDir === undefined ? "embedded PGlite (in memory)" : `embedded PGlite at ${pgliteDataDir}`;
  }
}

function rowsOf<Row>(result: unknown): Row[] {
  const rows = (result as { rows?: unknown } | null)?.rows;
  if (!Array.isArray(rows)) throw new TypeError("unexpected result shape from the database driver");
  return rows as Row[];
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
