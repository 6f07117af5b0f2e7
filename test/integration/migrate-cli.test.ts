import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENT_STORE_MIGRATIONS, MIGRATIONS_TABLE } from "../../src/adapters/postgres/migrations/index.js";
import { PgAdmin, TEST_DATABASE_URL, uniqueName, withDatabase } from "../support/pg-admin.js";

/** The compiled CLI (`npm test` builds first), run the way `npm run migrate` runs it. */
const MIGRATE_JS = fileURLToPath(new URL("../../dist/src/adapters/postgres/migrate-cli.js", import.meta.url));

function runMigrate(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [MIGRATE_JS], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, stdout, stderr })));
}

describe("npm run migrate (migrate-cli)", () => {
  const database = uniqueName("t_migrate");
  let admin: PgAdmin;

  beforeAll(async () => {
    admin = await PgAdmin.connect();
    await admin.query(`create database "${database}"`);
  });

  afterAll(async () => {
    await admin.query(`drop database if exists "${database}" with (force)`);
    await admin.close();
  });

  it("applies the migrations to a fresh database and exits 0, then reports it up to date", async () => {
    const url = withDatabase(TEST_DATABASE_URL, database);
    const first = await runMigrate({ DATABASE_URL: url });
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toContain("applied Migration20261125000000EventStore");

    const inspect = await PgAdmin.connect(url);
    try {
      const tables = await inspect.query<{ table_name: string }>(
        "select table_name from information_schema.tables where table_schema = 'public' order by table_name",
      );
      expect(tables.map((row) => row.table_name)).toEqual([
        "sobranie_channel_watermark",
        "sobranie_event",
        "sobranie_inbox_read",
        "sobranie_last_seen",
        MIGRATIONS_TABLE,
        "sobranie_outbox",
        "sobranie_revocation",
      ]);
      const applied = await inspect.query<{ name: string }>(`select name from public."${MIGRATIONS_TABLE}"`);
      expect(applied.map((row) => row.name)).toEqual(EVENT_STORE_MIGRATIONS.map((migration) => migration.name));
    } finally {
      await inspect.close();
    }

    const second = await runMigrate({ DATABASE_URL: url });
    expect(second.code).toBe(0);
    expect(second.stdout).toContain("up to date");
  });

  it("exits 2 without DATABASE_URL and 1 when the database is unreachable", async () => {
    expect((await runMigrate({})).code).toBe(2);
    const down = await runMigrate({ DATABASE_URL: "postgres://postgres@127.0.0.1:1/test" });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain("cannot reach");
  });
});
