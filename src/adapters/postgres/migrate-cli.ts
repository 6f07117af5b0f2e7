#!/usr/bin/env node
import { MikroORM } from "@mikro-orm/core";
import { silentLogger } from "@sobranie/protocol/runtime/logger";
import { redactUrl } from "./connection-errors.js";
import { applyMigrations } from "./migrate.js";
import { DEFAULT_SCHEMA, ormOptions } from "./orm-config.js";

/**
 * `npm run migrate`: applies pending event store migrations to DATABASE_URL
 * and exits. Exit codes: 0 applied or already up to date, 1 failed, 2 no
 * DATABASE_URL. Safe to run while gateways start: migrations are serialized
 * by an advisory lock (migrate.ts). Like main.ts, an entry point may read the
 * environment; nothing below it does.
 */
const CONNECT_TIMEOUT_MS = 10_000;

async function main(): Promise<number> {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    process.stderr.write("migrate: DATABASE_URL is required (postgres://user@host:5432/db)\n");
    return 2;
  }
  const target = redactUrl(databaseUrl);
  const orm = await MikroORM.init(ormOptions({ databaseUrl, connectTimeoutMs: CONNECT_TIMEOUT_MS }, silentLogger));
  try {
    const check = await orm.checkConnection();
    if (!check.ok) {
      process.stderr.write(`migrate: cannot reach ${target}: ${check.reason ?? "unknown reason"}\n`);
      return 1;
    }
    const applied = await applyMigrations(orm, DEFAULT_SCHEMA, true);
    process.stdout.write(
      applied.length === 0
        ? `migrate: ${target} is up to date\n`
        : `migrate: applied ${applied.join(", ")} to ${target}\n`,
    );
    return 0;
  } finally {
    await orm.close(true);
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`migrate: failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
