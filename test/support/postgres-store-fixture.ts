import { PostgresEventStore, type PostgresEventStoreOptions } from "../../src/adapters/postgres/postgres-event-store.js";
import { silentLogger } from "@sobranie/protocol/runtime/logger";
import type { EventStoreFixture } from "../contract/event-store.contract.js";
import { uniqueName } from "./pg-admin.js";

/**
 * The event-store contract fixture for PostgresEventStore, on PostgreSQL or PGlite
 * alike: a started store in a fresh schema of its own, `reopen` as a process
 * restart on the same schema, and cleanup that drops the schema.
 */
export async function ormStoreFixture(
  target: Pick<PostgresEventStoreOptions, "databaseUrl" | "pglite" | "healthCheckIntervalMs">,
  dropSchema: (schema: string) => Promise<void>,
): Promise<EventStoreFixture> {
  const schema = uniqueName("t_events");
  const open = async (): Promise<PostgresEventStore> => {
    const store = new PostgresEventStore({ logger: silentLogger, schema, ...target });
    await store.start();
    return store;
  };
  let current = await open();
  return {
    store: current,
    async reopen() {
      await current.stop();
      current = await open();
      return current;
    },
    async cleanup() {
      await current.stop();
      await dropSchema(schema);
    },
  };
}
