import { defineEntity, p } from "@mikro-orm/core";

/**
 * The event store's tables, described once. The committed migrations create
 * exactly this (test/integration checks there is no drift); the store's hot
 * paths use hand-written SQL against these names, taken from here.
 */

/** One durable event. `seq` is the store-wide order every reader relies on. */
export const StoredEventEntity = defineEntity({
  name: "StoredEvent",
  tableName: "sobranie_event",
  properties: {
    // bigserial: one sequence for all channels, so "after seq N" is meaningful across channels.
    // Kept as a JS number: seqs stay far below 2^53.
    seq: p.bigint("number").primary().autoincrement(),
    // UNIQUE is what makes duplicate delivery (at-least-once from RabbitMQ) idempotent.
    eventId: p.string().length(64).unique(),
    channel: p.string().length(170),
    // Denormalized from `channel` so retention can select a namespace without parsing.
    namespace: p.string().length(32),
    type: p.string().length(600),
    data: p.json<unknown>(),
    userId: p.string().length(128).nullable(),
    occurredAt: p.datetime(),
    storedAt: p.datetime().defaultRaw("now()"),
  },
  indexes: [
    // history, inbox and unread counts: one channel, a seq range.
    { properties: ["channel", "seq"] },
    // age-based retention: one namespace, an occurred_at range.
    { properties: ["namespace", "occurredAt"] },
  ],
});

/** A user's inbox read mark: everything in `user:<id>` up to this seq is read. */
export const InboxReadEntity = defineEntity({
  name: "InboxRead",
  tableName: "sobranie_inbox_read",
  properties: {
    userId: p.string().length(128).primary(),
    readUpTo: p.bigint("number"),
    updatedAt: p.datetime().defaultRaw("now()"),
  },
});

/**
 * The highest seq of a channel that retention removed. Without it a reader
 * could not tell "nothing happened after your seq" from "what happened was
 * pruned", and would claim a complete recovery it did not deliver.
 */
export const ChannelRetentionEntity = defineEntity({
  name: "ChannelRetention",
  tableName: "sobranie_channel_watermark",
  properties: {
    channel: p.string().length(170).primary(),
    prunedUpTo: p.bigint("number"),
  },
});

/**
 * The outbox (docs/publishing.md "From SQL: the PostgreSQL outbox"): one row per event an application
 * transaction emitted through the trigger functions of the outbox migration;
 * the worker's relay publishes unpublished rows in id order and stamps
 * `publishedAt` once the broker confirmed them.
 */
export const OutboxEntity = defineEntity({
  name: "Outbox",
  tableName: "sobranie_outbox",
  properties: {
    id: p.bigint("number").primary().autoincrement(),
    routingKey: p.string().length(255),
    // Becomes the envelope id and AMQP message_id: downstream dedupe makes a re-relay harmless.
    eventId: p.string().length(64).unique(),
    body: p.json<unknown>(),
    createdAt: p.datetime().defaultRaw("now()"),
    publishedAt: p.datetime().nullable(),
  },
  indexes: [
    {
      name: "sobranie_outbox_unpublished_index",
      expression: 'create index "sobranie_outbox_unpublished_index" on "sobranie_outbox" ("id") where "published_at" is null',
    },
  ],
});

/** When a user was last online (their last connection on any node closed), for `status` after restarts. */
export const LastSeenEntity = defineEntity({
  name: "LastSeen",
  tableName: "sobranie_last_seen",
  properties: {
    userId: p.string().length(128).primary(),
    lastSeenAt: p.datetime(),
  },
});

/**
 * A revocation (docs/protocol.md §11), one row per user, kind and
 * subject: the `jti` of a `token` entry, the channel of a `channel` entry,
 * empty for `issued_before`. Every node that receives a command upserts its
 * row; rows past `expiresAt` no longer matter and are pruned.
 */
export const RevocationEntity = defineEntity({
  name: "Revocation",
  tableName: "sobranie_revocation",
  properties: {
    userId: p.string().length(128).primary(),
    kind: p.string().length(16).primary(),
    subject: p.string().length(256).primary(),
    issuedBeforeMs: p.bigint("number").nullable(),
    expiresAt: p.datetime(),
  },
  indexes: [{ properties: ["expiresAt"] }],
});

export const EVENT_STORE_ENTITIES = [StoredEventEntity, InboxReadEntity, ChannelRetentionEntity, OutboxEntity, LastSeenEntity, RevocationEntity] as const;
