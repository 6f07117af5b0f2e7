import { describe, expect, it } from "vitest";
import { MemoryEventStore } from "../../src/adapters/memory/memory-event-store.js";
import { NamespaceRegistry, BUILT_IN_NAMESPACES } from "../../src/core/namespaces.js";
import { noopMetrics, type Metrics } from "../../src/core/ports/metrics.js";
import { silentLogger } from "@sobranie/protocol/runtime/logger";
import { StoreUnavailableError, type EventStore } from "../../src/core/ports/event-store.js";
import type { LivePublish, PersistMessage, PersistQueue } from "../../src/core/ports/persist-queue.js";
import { PersistWorker } from "../../src/worker/persist-worker.js";
import { FakeClock } from "../support/fake-clock.js";

const encoder = new TextEncoder();

function message(routingKey: string, body: unknown): PersistMessage {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return { routingKey, body: encoder.encode(text), messageId: undefined, timestampMs: 1_000, redelivered: false };
}

/** Records live publishes; the queue side of the port is not exercised here. */
class RecordingQueue implements PersistQueue {
  readonly published: LivePublish[] = [];
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  isReady(): boolean {
    return true;
  }
  async publishLive(live: LivePublish): Promise<void> {
    this.published.push(live);
  }
}

async function setup(store?: EventStore, metrics: Metrics = noopMetrics) {
  if (!store) {
    store = new MemoryEventStore();
    await store.start();
  }
  const queue = new RecordingQueue();
  const clock = new FakeClock();
  let ids = 0;
  const worker = new PersistWorker({
    store,
    queue,
    namespaces: new NamespaceRegistry(BUILT_IN_NAMESPACES),
    clock,
    logger: silentLogger,
    metrics,
    newId: () => `gen-${++ids}`,
    retry: { initialDelayMs: 10, maxDelayMs: 10 },
  });
  const relayed = () => queue.published.map((live) => JSON.parse(live.body) as { id: string; seq: number });
  return { worker, queue, clock, store, relayed };
}

describe("PersistWorker", () => {
  it("stores each event, relays it live with its seq and the original publish time, in order", async () => {
    const { worker, queue, relayed } = await setup();
    const outcomes = await worker.handleBatch([
      message("user.1.notification.created", { id: "a", type: "notification.created", data: { n: 1 } }),
      message("room.7.message.created", { id: "b", type: "message.created", data: { n: 2 } }),
    ]);
    expect(outcomes).toEqual([{ kind: "done" }, { kind: "done" }]);
    expect(relayed()).toMatchObject([
      { id: "a", seq: 1 },
      { id: "b", seq: 2 },
    ]);
    expect(queue.published.map((live) => [live.routingKey, live.timestampMs])).toEqual([
      ["user.1.notification.created", 1_000],
      ["room.7.message.created", 1_000],
    ]);
  });

  it("relays an id repeated in one batch once, and an id from an earlier batch again with its first seq", async () => {
    const { worker, relayed } = await setup();
    const event = { id: "dup", type: "t", data: {} };
    await worker.handleBatch([message("user.1.t", event), message("user.1.t", event)]);
    await worker.handleBatch([message("user.1.t", event)]);
    expect(relayed()).toMatchObject([
      { id: "dup", seq: 1 },
      { id: "dup", seq: 1 },
    ]);
  });

  it("dead-letters poison and non-durable events while the rest of the batch goes through", async () => {
    const { worker, relayed } = await setup();
    const outcomes = await worker.handleBatch([
      message("user.1.t", "not json"),
      message("user.1.t", { type: "t" }),
      message("post.1.t", { id: "p", type: "t", data: {} }),
      message("user.1", { id: "k", type: "t", data: {} }),
      message("user.1.t", { id: "ok", type: "t", data: {} }),
    ]);
    expect(outcomes.map((outcome) => (outcome.kind === "dead-letter" ? outcome.reason : "done"))).toEqual([
      "not_json",
      "invalid_envelope",
      "not_durable",
      "bad_routing_key",
      "done",
    ]);
    expect(relayed().map((event) => event.id)).toEqual(["ok"]);
  });

  it("dead-letters data nested over 64 levels as too_deep, counted, while the rest of the batch goes through", async () => {
    const deadLettered: string[] = [];
    const { worker, relayed } = await setup(undefined, { ...noopMetrics, deadLettered: (reason) => void deadLettered.push(reason) });
    const deep = `{"id":"deep","type":"t","data":${"[".repeat(10_000)}${"]".repeat(10_000)}}`;
    const outcomes = await worker.handleBatch([message("user.1.t", deep), message("user.1.t", { id: "ok", type: "t", data: [[1]] })]);
    expect(outcomes).toEqual([
      { kind: "dead-letter", reason: "too_deep", message: expect.stringContaining("64 levels") },
      { kind: "done" },
    ]);
    expect(deadLettered).toEqual(["too_deep"]);
    expect(relayed().map((event) => event.id)).toEqual(["ok"]);
  });

  it("retries while the store is unavailable and never reports the batch done before it is stored", async () => {
    const store = new MemoryEventStore();
    await store.start();
    let failures = 2;
    const flaky = Object.assign(Object.create(store) as EventStore, {
      append: (events: Parameters<EventStore["append"]>[0]) =>
        failures-- > 0 ? Promise.reject(new StoreUnavailableError("down")) : store.append(events),
    });
    const { worker, clock, relayed } = await setup(flaky);
    const handled = worker.handleBatch([message("user.1.t", { id: "a", type: "t", data: {} })]);
    for (let i = 0; i < 5 && relayed().length === 0; i++) {
      await Promise.resolve();
      clock.advance(10);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await handled).toEqual([{ kind: "done" }]);
    expect(failures).toBe(-1);
    expect(relayed()).toMatchObject([{ id: "a", seq: 1 }]);
  });

  it("isolates an event the store refuses for good, dead-lettering only that one", async () => {
    const store = new MemoryEventStore();
    await store.start();
    const picky = Object.assign(Object.create(store) as EventStore, {
      append: (events: Parameters<EventStore["append"]>[0]) =>
        events.some((event) => event.id === "bad") ? Promise.reject(new Error("unsupported Unicode escape sequence")) : store.append(events),
    });
    const { worker, relayed } = await setup(picky);
    const outcomes = await worker.handleBatch([
      message("user.1.t", { id: "a", type: "t", data: {} }),
      message("user.1.t", { id: "bad", type: "t", data: {} }),
      message("user.1.t", { id: "c", type: "t", data: {} }),
    ]);
    expect(outcomes[1]).toMatchObject({ kind: "dead-letter", reason: "store_rejected" });
    expect(relayed().map((event) => event.id)).toEqual(["a", "c"]);
  });

  it("gives up a retry loop when stopped, leaving the batch to be redelivered", async () => {
    const store = new MemoryEventStore();
    await store.start();
    const down = Object.assign(Object.create(store) as EventStore, {
      append: () => Promise.reject(new StoreUnavailableError("down")),
    });
    const { worker } = await setup(down);
    const handled = worker.handleBatch([message("user.1.t", { id: "a", type: "t", data: {} })]);
    await new Promise((resolve) => setImmediate(resolve));
    worker.stop();
    await expect(handled).rejects.toThrow("down");
  });
});
