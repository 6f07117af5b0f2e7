export { ChannelRetentionEntity, EVENT_STORE_ENTITIES, InboxReadEntity, StoredEventEntity } from "./entities.js";
export { EVENT_STORE_MIGRATIONS, MIGRATIONS_TABLE } from "./migrations/index.js";
export { OrmEventStore, type OrmEventStoreOptions } from "./orm-event-store.js";
