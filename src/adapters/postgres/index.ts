export { ChannelRetentionEntity, EVENT_STORE_ENTITIES, InboxReadEntity, StoredEventEntity } from "./entities.js";
export { EVENT_STORE_MIGRATIONS, MIGRATIONS_TABLE } from "./migrations/index.js";
export { PostgresEventStore, type PostgresEventStoreOptions } from "./postgres-event-store.js";
