import { PGlite } from "@electric-sql/pglite";
import { afterAll, beforeAll } from "vitest";
import { OrmEventStore } from "../../src/adapters/orm/orm-event-store.js";
import { silentLogger } from "../../src/core/ports/logger.js";
import { uniqueName } from "../support/pg-admin.js";
import { type EventStoreFixture, eventStoreContract } from "./event-store.contract.js";

/** Creating a PGlite costs seconds (initdb in WASM): one per file, one schema per test. */
const PGLITE_START_TIMEOUT_MS = 120_000;
let pglite: PGlite;

beforeAll(async () => {
  pglite = new PGlite();
  await pglite.waitReady;
}, PGLITE_START_TIMEOUT_MS);

afterAll(async () => {
  await pglite.close();
});

eventStoreContract("OrmEventStore on PGlite", async (): Promise<EventStoreFixture> => {
  const schema = uniqueName("t_events");
  const open = async (): Promise<OrmEventStore> => {
    const store = new OrmEventStore({ logger: silentLogger, pglite, schema, healthCheckIntervalMs: 0 });
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
      await pglite.exec(`drop schema if exists "${schema}" cascade`);
    },
  };
});
