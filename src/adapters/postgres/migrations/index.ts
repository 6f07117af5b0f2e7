import type { MigrationObject } from "@mikro-orm/core";
import { Migration20261125000000EventStore } from "./Migration20261125000000EventStore.js";
import { Migration20261126000000Outbox } from "./Migration20261126000000Outbox.js";
import { Migration20261126100000LastSeen } from "./Migration20261126100000LastSeen.js";
import { Migration20261201000000Revocations } from "./Migration20261201000000Revocations.js";

/**
 * Every event store migration, oldest first. Listed explicitly (never
 * globbed) so the compiled `dist/` runs them with no .ts files around and no
 * dependence on class names surviving a bundler. Names are what the
 * migrations table records: never rename one.
 */
export const EVENT_STORE_MIGRATIONS: MigrationObject[] = [
  { name: "Migration20261125000000EventStore", class: Migration20261125000000EventStore },
  { name: "Migration20261126000000Outbox", class: Migration20261126000000Outbox },
  { name: "Migration20261126100000LastSeen", class: Migration20261126100000LastSeen },
  { name: "Migration20261201000000Revocations", class: Migration20261201000000Revocations },
];

/** Table recording applied migrations, in the store's schema. */
export const MIGRATIONS_TABLE = "sobranie_migrations";
