import { randomUUID } from "node:crypto";
import { MikroORM } from "@mikro-orm/core";
import { PostgreSqlDriver } from "@mikro-orm/postgresql";

/** The PostgreSQL the integration tests use (CI sets DATABASE_URL). */
export const TEST_DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A fresh schema or database name no other test (or run) uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
}

/** `url` with its database replaced (`/test` → `/<database>`). */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/**
 * A plain connection for test setup and inspection (create/drop schemas and
 * databases, look at tables), independent of the store under test.
 */
export class PgAdmin {
  private constructor(private readonly orm: MikroORM<PostgreSqlDriver>) {}

  static async connect(url: string = TEST_DATABASE_URL): Promise<PgAdmin> {
    const orm = await MikroORM.init<PostgreSqlDriver>({
      driver: PostgreSqlDriver,
      clientUrl: url,
      entities: [],
      discovery: { warnWhenNoEntities: false },
      ensureDatabase: false,
      allowGlobalContext: true,
      pool: { min: 0, max: 2 },
    });
    return new PgAdmin(orm);
  }

  async query<Row extends object>(sql: string, bindings: readonly unknown[] = []): Promise<Row[]> {
    return this.orm.em.getConnection().execute<Row[]>(sql, [...bindings]);
  }

  async dropSchema(schema: string): Promise<void> {
    await this.query(`drop schema if exists "${schema}" cascade`);
  }

  async close(): Promise<void> {
    await this.orm.close(true);
  }
}
