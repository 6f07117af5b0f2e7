import { SchemaMigration } from "./schema-migration.js";

/**
 * Users' lastSeen (docs/protocol.md §4 `status`), written in batches by the gateway
 * that publishes presence events. Frozen history: a later change is a new
 * migration, never an edit here.
 */
export class Migration20261126100000LastSeen extends SchemaMigration {
  override up(): void {
    this.addSql(
      `create table ${this.qualified("sobranie_last_seen")} (` +
        `"user_id" varchar(128) not null, ` +
        `"last_seen_at" timestamptz not null, ` +
        `constraint "sobranie_last_seen_pkey" primary key ("user_id"))`,
    );
  }

  override down(): void {
    this.addSql(`drop table if exists ${this.qualified("sobranie_last_seen")}`);
  }
}
