import type { PgAdmin } from "./pg-admin.js";

/**
 * The seed's application tables, as an application would attach the outbox
 * trigger functions to them (docs/publishing.md "From SQL: the PostgreSQL outbox"). Run after the
 * gateway's migrations, which create the functions.
 */
export async function createAppTables(admin: PgAdmin): Promise<void> {
  await admin.query(
    `create table notifications (id bigserial primary key, user_id text not null, type text not null, ` +
      `payload jsonb not null default '{}', created_at timestamptz not null default now())`,
  );
  await admin.query(
    `create trigger notifications_outbox after insert on notifications for each row execute function sobranie_outbox_notification()`,
  );
  await admin.query(
    `create table posts (id bigserial primary key, author_id text not null, title text not null, created_at timestamptz not null default now())`,
  );
  await admin.query(
    `create trigger posts_outbox after insert or update or delete on posts for each row execute function sobranie_outbox_post()`,
  );
}

/** Inserts `count` notifications for `userId` in one transaction; payload.i runs from `from`. */
export async function insertNotifications(admin: PgAdmin, userId: string, from: number, count: number): Promise<void> {
  await admin.query(
    `insert into notifications (user_id, type, payload) ` +
      `select ?, 'burst', jsonb_build_object('i', g) from generate_series(?::int, ?::int) g order by g`,
    [userId, from, from + count - 1],
  );
}
