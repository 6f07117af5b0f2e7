import { PGlite } from "@electric-sql/pglite";
import type { Options } from "@mikro-orm/core";
import { Migrator } from "@mikro-orm/migrations";
import { type AbstractSqlDriver, PostgreSqlDriver } from "@mikro-orm/postgresql";
import { PGliteDriver } from "mikro-orm-pglite";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import { EVENT_STORE_ENTITIES } from "./entities.js";
import { EVENT_STORE_MIGRATIONS, MIGRATIONS_TABLE } from "./migrations/index.js";

/** A schema name we can put in SQL unquoted-safe and within PostgreSQL's 63-byte limit. */
export const SCHEMA_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
export const DEFAULT_SCHEMA = "public";

export interface OrmTarget {
  /** PostgreSQL URL; without it the embedded PGlite is used. */
  readonly databaseUrl?: string | undefined;
  /** PGlite data directory; unset keeps the embedded database in memory. */
  readonly pgliteDataDir?: string | undefined;
  readonly schema?: string | undefined;
  readonly debug?: boolean | undefined;
  /** Bound on establishing one PostgreSQL connection. */
  readonly connectTimeoutMs: number;
}

/**
 * MikroORM options shared by the store and the migration CLI: the same
 * entities and the same explicit migration list on PostgreSQL and PGlite.
 * For PGlite the caller owns the instance (created here, closed by the caller
 * after the ORM), so an on-disk data directory is closed cleanly.
 */
export function ormOptions(target: OrmTarget, logger: Logger, pglite?: PGlite): Options<AbstractSqlDriver> {
  const common: Options<AbstractSqlDriver> = {
    entities: [...EVENT_STORE_ENTITIES],
    extensions: [Migrator],
    migrations: {
      migrationsList: EVENT_STORE_MIGRATIONS,
      tableName: MIGRATIONS_TABLE,
      transactional: true,
      allOrNothing: true,
      snapshot: false,
      silent: true,
    },
    // start() checks reachability itself and reports it as StoreUnavailableError.
    ensureDatabase: false,
    discovery: { warnWhenNoEntities: false },
    allowGlobalContext: true,
    debug: target.debug ?? false,
    colors: false,
    logger: (message: string) => logger.debug({ component: "mikro-orm" }, message),
    ...(target.schema === undefined ? {} : { schema: target.schema }),
  };
  // knex prints its warnings (a pooled connection dropped, ...) to the console otherwise.
  const log = {
    warn: (message: unknown) => logger.warn({ component: "knex" }, String(message)),
    error: (message: unknown) => logger.error({ component: "knex" }, String(message)),
    deprecate: (message: unknown) => logger.debug({ component: "knex" }, String(message)),
    debug: (message: unknown) => logger.debug({ component: "knex" }, String(message)),
  };
  if (target.databaseUrl !== undefined) {
    return {
      ...common,
      driver: PostgreSqlDriver,
      clientUrl: target.databaseUrl,
      driverOptions: {
        connection: { connectionTimeoutMillis: target.connectTimeoutMs },
        acquireConnectionTimeout: target.connectTimeoutMs * 2,
        log,
      },
    };
  }
  if (!pglite) throw new Error("ormOptions: the embedded store needs a PGlite instance");
  return {
    ...common,
    driver: PGliteDriver,
    dbName: "postgres",
    driverOptions: { connection: { pglite: () => pglite }, log },
  };
}

export function createPGlite(dataDir: string | undefined): PGlite {
  return dataDir === undefined ? new PGlite() : new PGlite(dataDir);
}
