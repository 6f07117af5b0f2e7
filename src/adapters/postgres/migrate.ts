import type { MikroORM } from "@mikro-orm/core";
import type { AbstractSqlDriver } from "@mikro-orm/postgresql";

/**
 * Key of the transaction-scoped advisory lock that serializes migrations
 * between processes starting at once against one PostgreSQL (several
 * gateways, a worker, `npm run migrate`): without it two of them could both
 * see a migration pending and the second would fail on "relation exists".
 */
const MIGRATION_LOCK_KEY = 0x50b7a41e;

/**
 * Creates the schema if missing and applies pending migrations; returns the
 * names applied (none when up to date, so running it again is harmless).
 *
 * `serialize` takes the advisory lock (PostgreSQL). PGlite is one in-process
 * connection, so there is no one to race with, and holding a transaction
 * there while the migrator asks for a second connection would wait forever.
 */
export async function applyMigrations(
  orm: MikroORM<AbstractSqlDriver>,
  schema: string,
  serialize: boolean,
): Promise<string[]> {
  const knex = orm.em.getConnection().getKnex();
  const createSchema = `create schema if not exists "${schema}"`;
  if (!serialize) {
    await knex.raw(createSchema);
    return (await orm.migrator.up()).map((migration) => migration.name);
  }
  const lock = "select pg_advisory_xact_lock(?::bigint)";
  // The schema is committed before migrating: the migrator checks for it on
  // another pooled connection, which must not wait on our uncommitted DDL.
  await knex.transaction(async (trx) => {
    await trx.raw(lock, [MIGRATION_LOCK_KEY]);
    await trx.raw(createSchema);
  });
  return knex.transaction(async (trx) => {
    await trx.raw(lock, [MIGRATION_LOCK_KEY]);
    const applied = await orm.migrator.up({ transaction: trx });
    return applied.map((migration) => migration.name);
  });
}
