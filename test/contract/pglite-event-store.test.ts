import { PGlite } from "@electric-sql/pglite";
import { afterAll, beforeAll } from "vitest";
import { ormStoreFixture } from "../support/postgres-store-fixture.js";
import { eventStoreContract } from "./event-store.contract.js";

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

eventStoreContract("PostgresEventStore on PGlite", () =>
  ormStoreFixture({ pglite, healthCheckIntervalMs: 0 }, async (schema) => {
    await pglite.exec(`drop schema if exists "${schema}" cascade`);
  }),
);
