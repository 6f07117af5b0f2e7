import { SchemaMigration } from "./schema-migration.js";

/**
 * Creates the event store tables (entities.ts). Frozen history: a later
 * schema change is a new migration, never an edit here.
 *
 * Every name is qualified with the configured schema (default `public`), so
 * the same class serves production and the per-test schemas, on PostgreSQL
 * and on PGlite alike.
 */
export class Migration20261125000000EventStore extends SchemaMigration {
  override up(): void {
    const event = this.qualified("sobranie_event");
    this.addSql(
      `create table ${event} (` +
        `"seq" bigserial primary key, ` +
        `"event_id" varchar(64) not null, ` +
        `"channel" varchar(170) not null, ` +
        `"namespace" varchar(32) not null, ` +
        `"type" varchar(600) not null, ` +
        `"data" jsonb not null, ` +
        `"user_id" varchar(128) null, ` +
        `"occurred_at" timestamptz not null, ` +
        `"stored_at" timestamptz not null default now())`,
    );
    this.addSql(`alter table ${event} add constraint "sobranie_event_event_id_unique" unique ("event_id")`);
    this.addSql(`create index "sobranie_event_channel_seq_index" on ${event} ("channel", "seq")`);
    this.addSql(`create index "sobranie_event_namespace_occurred_at_index" on ${event} ("namespace", "occurred_at")`);
    this.addSql(
      `create table ${this.qualified("sobranie_inbox_read")} (` +
        `"user_id" varchar(128) not null, ` +
        `"read_up_to" bigint not null, ` +
        `"updated_at" timestamptz not null default now(), ` +
        `constraint "sobranie_inbox_read_pkey" primary key ("user_id"))`,
    );
    this.addSql(
      `create table ${this.qualified("sobranie_channel_watermark")} (` +
        `"channel" varchar(170) not null, ` +
        `"pruned_up_to" bigint not null, ` +
        `constraint "sobranie_channel_watermark_pkey" primary key ("channel"))`,
    );
  }

  override down(): void {
    for (const name of ["sobranie_channel_watermark", "sobranie_inbox_read", "sobranie_event"]) {
      this.addSql(`drop table if exists ${this.qualified(name)}`);
    }
  }
}
