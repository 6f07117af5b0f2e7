import { randomUUID } from "node:crypto";
import { PostgresEventStore } from "../../src/adapters/postgres/postgres-event-store.js";
import type { EventStore, NewEvent } from "../../src/core/ports/event-store.js";
import { silentLogger } from "@sobranie/protocol/runtime/logger";
import { PgAdmin, TEST_DATABASE_URL, uniqueName } from "../support/pg-admin.js";

/**
 * Append throughput of PostgresEventStore, batches of 100 and 1000, on PostgreSQL
 * (DATABASE_URL or the test default, a throwaway schema) and on in-memory
 * PGlite. Not a timed test: a baseline to compare changes against.
 *   npm run build:test && node dist/test/bench/event-store-append.js [totalEvents]
 */
const TOTAL_EVENTS = Number(process.argv[2] ?? 50_000);
const BATCH_SIZES = [100, 1000] as const;
const CHANNELS = 200;

function batchOf(size: number): NewEvent[] {
  const occurredAt = new Date().toISOString();
  return Array.from({ length: size }, (_, index) => ({
    id: randomUUID(),
    channel: `room:${index % CHANNELS}`,
    type: "message.created",
    data: { text: "hello from the benchmark, a message of typical size", author: { id: "u-42", name: "Ada" }, n: index },
    occurredAt,
  }));
}

async function measure(label: string, store: EventStore): Promise<void> {
  for (const size of BATCH_SIZES) {
    await store.append(batchOf(size)); // warm-up: plan cache, pool, JIT
    const batches = Math.max(1, Math.round(TOTAL_EVENTS / size));
    const prepared = Array.from({ length: batches }, () => batchOf(size));
    const started = performance.now();
    for (const batch of prepared) await store.append(batch);
    const seconds = (performance.now() - started) / 1000;
    const perSecond = Math.round((batches * size) / seconds);
    const msPerBatch = ((seconds * 1000) / batches).toFixed(2);
    console.log(`${label.padEnd(12)} batch ${String(size).padStart(4)}: ${perSecond} events/s (${msPerBatch} ms/batch, ${batches} batches)`);
  }
}

async function main(): Promise<void> {
  const schema = uniqueName("bench_events");
  const admin = await PgAdmin.connect();
  const postgres = new PostgresEventStore({ logger: silentLogger, databaseUrl: TEST_DATABASE_URL, schema });
  try {
    await postgres.start();
    await measure("postgresql", postgres);
  } finally {
    await postgres.stop();
    await admin.dropSchema(schema);
    await admin.close();
  }

  const startedMs = performance.now();
  const pglite = new PostgresEventStore({ logger: silentLogger });
  await pglite.start();
  console.log(`pglite       start (in memory, initdb + migrations): ${Math.round(performance.now() - startedMs)} ms`);
  try {
    await measure("pglite", pglite);
  } finally {
    await pglite.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
