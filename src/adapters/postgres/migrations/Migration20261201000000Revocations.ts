import { SchemaMigration } from "./schema-migration.js";

/**
 * Revocations (docs/protocol.md §11), upserted by every gateway that
 * receives a `revoke` or `unsubscribe` command and loaded before it reports
 * ready. Frozen history: a later change is a new migration, never an edit here.
 */
export class Migration20261201000000Revocations extends SchemaMigration {
  override up(): void {
    const table = this.qualified("sobranie_revocation");
    this.addSql(
      `create table ${table} (` +
        `"user_id" varchar(128) not null, ` +
        `"kind" varchar(16) not null, ` +
        `"subject" varchar(256) not null, ` +
        `"issued_before_ms" bigint null, ` +
        `"expires_at" timestamptz not null, ` +
        `constraint "sobranie_revocation_pkey" primary key ("user_id", "kind", "subject"))`,
    );
    this.addSql(`create index "sobranie_revocation_expires_at_index" on ${table} ("expires_at")`);
  }

  override down(): void {
    this.addSql(`drop table if exists ${this.qualified("sobranie_revocation")}`);
  }
}
