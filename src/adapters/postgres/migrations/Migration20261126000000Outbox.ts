import { SchemaMigration } from "./schema-migration.js";

/**
 * The PostgreSQL outbox (docs/publishing.md "From SQL: the PostgreSQL outbox"). Frozen history: a later
 * change is a new migration, never an edit here.
 *
 * Creates the outbox table and the trigger FUNCTIONS an application attaches
 * to its own tables; it creates no trigger and no application table. Every
 * function writes one outbox row in the caller's transaction and NOTIFYs
 * `sobranie_outbox` with only that row's id: a NOTIFY payload is capped at
 * 8000 bytes and lost when nobody listens, so the row, not the NOTIFY, is the
 * event; the NOTIFY only wakes the relay early.
 *
 * Names are qualified with the configured schema, like the event store's.
 */
export class Migration20261126000000Outbox extends SchemaMigration {
  override up(): void {
    const outbox = this.qualified("sobranie_outbox");
    const capture = this.qualified("sobranie_outbox_capture");
    const emit = this.qualified("sobranie_outbox_emit");
    this.addSql(
      `create table ${outbox} (` +
        `"id" bigserial primary key, ` +
        `"routing_key" varchar(255) not null, ` +
        `"event_id" varchar(64) not null, ` +
        `"body" jsonb not null, ` +
        `"created_at" timestamptz not null default now(), ` +
        `"published_at" timestamptz null)`,
    );
    this.addSql(`alter table ${outbox} add constraint "sobranie_outbox_event_id_unique" unique ("event_id")`);
    // The relay's only read: unpublished rows in id order. Published rows leave the index.
    this.addSql(`create index "sobranie_outbox_unpublished_index" on ${outbox} ("id") where "published_at" is null`);

    // emit(namespace, channel id, type, data[, occurred_at[, event_id]]) → outbox row id.
    // Routing key `namespace.id.type`, body the docs/protocol.md §3 envelope.
    this.addSql(
      `create or replace function ${emit}(p_namespace text, p_channel_id text, p_type text, p_data jsonb, ` +
        `p_occurred_at timestamptz default now(), p_event_id text default null) returns bigint ` +
        `language plpgsql as $fn$ ` +
        `declare v_event_id text := coalesce(p_event_id, gen_random_uuid()::text); v_id bigint; ` +
        `begin ` +
        `if p_namespace is null or p_channel_id is null or p_type is null then ` +
        `raise exception 'sobranie_outbox_emit: namespace, channel id and type are required (got %, %, %)', p_namespace, p_channel_id, p_type; ` +
        `end if; ` +
        `insert into ${outbox} ("routing_key", "event_id", "body") values (` +
        `p_namespace || '.' || p_channel_id || '.' || p_type, v_event_id, ` +
        `jsonb_build_object('id', v_event_id, 'type', p_type, 'data', coalesce(p_data, 'null'::jsonb), ` +
        `'occurredAt', to_char(p_occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))) ` +
        `returning "id" into v_id; ` +
        `perform pg_notify('sobranie_outbox', v_id::text); ` +
        `return v_id; ` +
        `end $fn$`,
    );
    // capture(namespace, id column, entity, TG_OP, row): the row as `data`, type `<entity>.created|updated|deleted`.
    this.addSql(
      `create or replace function ${capture}(p_namespace text, p_id_column text, p_entity text, p_op text, p_row jsonb) ` +
        `returns bigint language plpgsql as $fn$ ` +
        `begin ` +
        `return ${emit}(p_namespace, p_row ->> p_id_column, ` +
        `p_entity || '.' || case p_op when 'INSERT' then 'created' when 'UPDATE' then 'updated' else 'deleted' end, p_row); ` +
        `end $fn$`,
    );
    // The generic trigger: EXECUTE FUNCTION sobranie_outbox_row('room', 'room_id', 'message').
    this.addSql(this.triggerFunction("sobranie_outbox_row", capture, "TG_ARGV[0], TG_ARGV[1], TG_ARGV[2]"));
    // The seed's two tables: notifications(id, user_id, …) → user.<user_id>.notification.created;
    // posts(id, …) → post.<id>.post.created (updated, deleted when attached to those events).
    this.addSql(this.triggerFunction("sobranie_outbox_notification", capture, "'user', 'user_id', 'notification'"));
    this.addSql(this.triggerFunction("sobranie_outbox_post", capture, "'post', 'id', 'post'"));
  }

  override down(): void {
    for (const fn of ["sobranie_outbox_post", "sobranie_outbox_notification", "sobranie_outbox_row"]) {
      this.addSql(`drop function if exists ${this.qualified(fn)}() cascade`);
    }
    this.addSql(`drop function if exists ${this.qualified("sobranie_outbox_capture")}(text, text, text, text, jsonb)`);
    this.addSql(`drop function if exists ${this.qualified("sobranie_outbox_emit")}(text, text, text, jsonb, timestamptz, text)`);
    this.addSql(`drop table if exists ${this.qualified("sobranie_outbox")}`);
  }

  private triggerFunction(name: string, capture: string, args: string): string {
    return (
      `create or replace function ${this.qualified(name)}() returns trigger language plpgsql as $fn$ ` +
      `declare v_row jsonb; ` +
      `begin ` +
      `if TG_OP = 'DELETE' then v_row := to_jsonb(OLD); else v_row := to_jsonb(NEW); end if; ` +
      `perform ${capture}(${args}, TG_OP, v_row); ` +
      `return null; ` +
      `end $fn$`
    );
  }
}
