import { describe, expect, it } from "vitest";
import { MemoryEventStore } from "../../src/adapters/memory/memory-event-store.js";
import type { LastSeenStore } from "../../src/core/ports/last-seen-store.js";
import { silentLogger } from "@sobranie/protocol/runtime/logger";
import { noopMetrics, type Metrics } from "../../src/core/ports/metrics.js";
import { LastSeenWriter } from "../../src/core/presence/last-seen-writer.js";
import { FakeClock } from "../support/fake-clock.js";

/** A store that counts statements and can be switched off (rejects like an unreachable PostgreSQL). */
class CountingStore implements LastSeenStore {
  readonly inner = new MemoryEventStore();
  batches: number[] = [];
  down = false;

  async saveLastSeen(seen: ReadonlyMap<string, number>): Promise<void> {
    if (this.down) throw new Error("connection refused");
    this.batches.push(seen.size);
    await this.inner.saveLastSeen(seen);
  }

  loadLastSeen(users: readonly string[]): Promise<Map<string, number>> {
    return this.inner.loadLastSeen(users);
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

function setup(options: { maxBatch?: number; maxPending?: number } = {}) {
  const clock = new FakeClock();
  const store = new CountingStore();
  const counts = { ok: 0, failed: 0, dropped: 0 };
  const metrics: Metrics = {
    ...noopMetrics,
    lastSeenSaved: (users, ok) => void (ok ? (counts.ok += users) : (counts.failed += users)),
    lastSeenDropped: () => void (counts.dropped += 1),
  };
  const writer = new LastSeenWriter(
    { flushMs: 1_000, maxBatch: options.maxBatch ?? 500, maxPending: options.maxPending ?? 10_000 },
    { store, clock, logger: silentLogger, metrics },
  );
  return { clock, store, writer, counts };
}

describe("LastSeenWriter", () => {
  it("writes a second's offlines as one statement, keeping each user's latest time", async () => {
    const { clock, store, writer, counts } = setup();
    await store.inner.start();
    for (let i = 0; i < 300; i++) writer.record(`u${i}`, 1_000 + i);
    writer.record("u0", 5_000);
    writer.record("u0", 4_000);
    clock.advance(999);
    await settle();
    expect(store.batches).toEqual([]);
    clock.advance(1);
    await settle();
    expect(store.batches).toEqual([300]);
    expect(counts.ok).toBe(300);
    expect(await store.loadLastSeen(["u0", "u299", "nobody"])).toEqual(
      new Map([
        ["u0", 5_000],
        ["u299", 1_299],
      ]),
    );
  });

  it("writes a full batch at once, without waiting for the timer", async () => {
    const { store, writer } = setup({ maxBatch: 100 });
    await store.inner.start();
    for (let i = 0; i < 250; i++) writer.record(`u${i}`, i);
    await settle();
    // The 100th record starts a write; the write loop then takes the rest, no timer involved.
    expect(store.batches).toEqual([100, 100, 50]);
  });

  it("keeps a failed batch and writes it when the store is back, later times winning", async () => {
    const { clock, store, writer, counts } = setup();
    await store.inner.start();
    store.down = true;
    writer.record("a", 10);
    writer.record("b", 20);
    clock.advance(1_000);
    await settle();
    expect(counts.failed).toBe(2);
    expect(writer.waiting).toBe(2);
    writer.record("a", 30);
    store.down = false;
    clock.advance(1_000);
    await settle();
    expect(writer.waiting).toBe(0);
    expect(await store.loadLastSeen(["a", "b"])).toEqual(
      new Map([
        ["a", 30],
        ["b", 20],
      ]),
    );
  });

  it("bounds what waits during an outage and counts what it drops (the oldest first)", async () => {
    const { clock, store, writer, counts } = setup({ maxPending: 3 });
    await store.inner.start();
    store.down = true;
    for (const user of ["a", "b", "c", "d", "e"]) writer.record(user, 1);
    expect(writer.waiting).toBe(3);
    expect(counts.dropped).toBe(2);
    store.down = false;
    clock.advance(1_000);
    await settle();
    expect([...(await store.loadLastSeen(["a", "b", "c", "d", "e"])).keys()].sort()).toEqual(["c", "d", "e"]);
  });

  it("writes what is waiting on stop, and gives up after one failed attempt", async () => {
    const { store, writer } = setup();
    await store.inner.start();
    writer.record("a", 1);
    await writer.stop();
    expect(await store.loadLastSeen(["a"])).toEqual(new Map([["a", 1]]));
    writer.record("b", 2);
    expect(writer.waiting).toBe(0);

    const failing = setup();
    failing.store.down = true;
    failing.writer.record("x", 1);
    await failing.writer.stop();
    expect(failing.counts.failed).toBe(1);
    expect(failing.writer.waiting).toBe(1);
  });
});
