import { describe, expect, it } from "vitest";
import { MemoryBroker } from "../../src/adapters/memory/memory-broker.js";
import { MemoryEventStore } from "../../src/adapters/memory/memory-event-store.js";
import type { EventStore, HistoryPage, StoredEvent } from "../../src/core/ports/event-store.js";
import { StoreUnavailableError } from "../../src/core/ports/event-store.js";
import { encodeEnvelope } from "@sobranie/protocol/envelope";
import { coreGateway } from "../support/core-gateway.js";
import { FakeClock } from "../support/fake-clock.js";

// The gateway's feed repair, driven through its BrokerHandler side the way
// AmqpBroker drives it: deliveries, then readinessChanged(false) when the
// connection (and with it the exclusive node queue) is lost, then
// readinessChanged(true) once a new queue consumes. The store plays the worker
// that kept storing meanwhile.

const encoder = new TextEncoder();

/** Lets promise chains (store reads, subscribe acks) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

async function setup(options: { store?: EventStore | "none" } = {}) {
  const clock = new FakeClock();
  const broker = new MemoryBroker({ liveNamespaces: ["post"] });
  const store = options.store === "none" ? undefined : (options.store ?? new MemoryEventStore());
  await store?.start();
  const { gateway, connect } = coreGateway(clock, broker, { bindLingerMs: 1_000, store });
  await gateway.start();
  await broker.start(gateway);
  return { clock, broker, store, gateway, connect };
}

async function subscribed(connect: ReturnType<typeof coreGateway>["connect"], user: string, channel: string) {
  const client = connect(user);
  client.session.receiveText(JSON.stringify({ op: "subscribe", ref: 1, channel }), 64);
  await settle();
  expect(client.socket.sent.find((frame) => frame.ref === 1)).toMatchObject({ op: "ok" });
  return client;
}

/** A broker loss as AmqpBroker reports it: not ready, then `meanwhile` (the worker storing while the gateway has no queue), then ready again. */
async function brokerLoss(gateway: ReturnType<typeof coreGateway>["gateway"], meanwhile: () => Promise<unknown>): Promise<void> {
  gateway.readinessChanged(false);
  await meanwhile();
  gateway.readinessChanged(true);
}

/** What the worker relays: the stored event with its seq. */
function live(event: StoredEvent) {
  const [namespace, id] = event.channel.split(":");
  return {
    routingKey: `${namespace}.${id}.${event.type}`,
    body: encoder.encode(encodeEnvelope({ id: event.id, type: event.type, data: event.data, occurredAt: event.occurredAt, seq: event.seq })),
    messageId: event.id,
    timestampMs: undefined,
  };
}

async function store(target: EventStore, channel: string, ids: string[]): Promise<StoredEvent[]> {
  const outcomes = await target.append(ids.map((id) => ({ id, channel, type: "note", data: { id }, occurredAt: "2026-12-02T10:00:00.000Z" })));
  return outcomes.map((outcome) => outcome.event);
}

/** `events` with its history read replaced (failing, slow): every other call goes to `events`. */
function withHistory(events: MemoryEventStore, history: EventStore["history"]): EventStore {
  return new Proxy(events, {
    get: (target, name, receiver) => (name === "history" ? history : (Reflect.get(target, name, receiver) as unknown)),
  });
}

/** A history read that waits until `open()` is called. */
function gatedHistory(events: MemoryEventStore): { store: EventStore; open: () => void } {
  let opened = false;
  const waiting: Array<() => void> = [];
  return {
    store: withHistory(events, async (channel, afterSeq, limit) => {
      if (!opened) await new Promise<void>((resolve) => waiting.push(resolve));
      return events.history(channel, afterSeq, limit);
    }),
    open: () => {
      opened = true;
      for (const resolve of waiting.splice(0)) resolve();
    },
  };
}

function eventIds(sent: Array<Record<string, unknown>>): unknown[] {
  return sent.filter((frame) => frame.op === "event").map((frame) => frame.id);
}

describe("feed repair after a broker interruption", () => {
  it("gives a connected subscriber of a durable channel every event stored meanwhile, once and in order, before later live events", async () => {
    const events = new MemoryEventStore();
    await events.start();
    const gated = gatedHistory(events);
    const { gateway, connect } = await setup({ store: gated.store });
    const client = await subscribed(connect, "u1", "user:u1");
    for (const event of await store(events, "user:u1", ["a", "b"])) gateway.handleDelivery(live(event));
    gateway.readinessChanged(false);
    const missed = await store(events, "user:u1", ["c", "d", "e"]);
    const [later] = await store(events, "user:u1", ["f"]);
    gateway.readinessChanged(true);
    // Before the history read returns: a relayed duplicate of a missed one and a new one arrive live, and wait.
    gateway.handleDelivery(live(missed[2]!));
    gateway.handleDelivery(live(later!));
    await settle();
    expect(eventIds(client.socket.sent)).toEqual(["a", "b"]);
    gated.open();
    await settle();
    expect(eventIds(client.socket.sent)).toEqual(["a", "b", "c", "d", "e", "f"]);
    const seqs = client.socket.sent.filter((frame) => frame.op === "event").map((frame) => frame.seq as number);
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
    expect(client.socket.sent.some((frame) => frame.op === "gap")).toBe(false);
  });

  it("repairs from the store's latest seq read at start when the node had received no durable event yet", async () => {
    const events = new MemoryEventStore();
    await events.start();
    await store(events, "user:u1", ["old-1", "old-2"]);
    const { gateway, connect } = await setup({ store: events });
    const client = await subscribed(connect, "u1", "user:u1");
    await brokerLoss(gateway, () => store(events, "user:u1", ["new-1"]));
    await settle();
    expect(eventIds(client.socket.sent)).toEqual(["new-1"]);
  });

  it("pages through more missed events than one history read returns", async () => {
    const { store: events, gateway, connect } = await setup();
    const client = await subscribed(connect, "u1", "user:u1");
    const [first] = await store(events!, "user:u1", ["first"]);
    gateway.handleDelivery(live(first!));
    gateway.readinessChanged(false);
    const ids = Array.from({ length: 250 }, (_, i) => `m${String(i).padStart(3, "0")}`);
    await store(events!, "user:u1", ids);
    gateway.readinessChanged(true);
    await settle();
    // coreGateway reads 100 per page.
    expect(eventIds(client.socket.sent)).toEqual(["first", ...ids]);
  });

  it("tells subscribers of a non-durable channel of the gap, once per interruption", async () => {
    const { gateway, connect } = await setup();
    const client = await subscribed(connect, "u1", "post:9");
    gateway.readinessChanged(false);
    gateway.readinessChanged(true);
    await settle();
    expect(client.socket.sent.filter((frame) => frame.op === "gap")).toEqual([{ op: "gap", channel: "post:9", reason: "interrupted" }]);
  });

  it("without a store, tells durable subscribers the gap is incomplete and then delivers live again", async () => {
    const { gateway, connect } = await setup({ store: "none" });
    const client = await subscribed(connect, "u1", "user:u1");
    gateway.readinessChanged(false);
    gateway.readinessChanged(true);
    const event: StoredEvent = { id: "x", channel: "user:u1", type: "note", data: {}, occurredAt: "2026-12-02T10:00:00.000Z", seq: 7 };
    gateway.handleDelivery(live(event));
    await settle();
    expect(client.socket.sent.filter((frame) => frame.op === "gap" || frame.op === "event").map((frame) => frame.op)).toEqual(["gap", "event"]);
    expect(client.socket.sent.find((frame) => frame.op === "gap")).toEqual({ op: "gap", channel: "user:u1", reason: "incomplete" });
  });

  it("retries a store that is away, and gives up with gap incomplete, then delivers what was held", async () => {
    const events = new MemoryEventStore();
    const flaky = withHistory(events, () => Promise.reject(new StoreUnavailableError()));
    const { clock, gateway, connect } = await setup({ store: flaky });
    const client = await subscribed(connect, "u1", "user:u1");
    gateway.readinessChanged(false);
    gateway.readinessChanged(true);
    const [held] = await store(events, "user:u1", ["held"]);
    gateway.handleDelivery(live(held!));
    for (let i = 0; i < 30; i++) {
      client.session.heard();
      clock.advance(10_000);
      await settle();
    }
    expect(client.socket.sent.filter((frame) => frame.op === "gap" || frame.op === "event").map((frame) => frame.op)).toEqual(["gap", "event"]);
  });

  it("a store that comes back within the retries repairs completely", async () => {
    const events = new MemoryEventStore();
    let failures = 2;
    const flaky = withHistory(events, (channel, afterSeq, limit): Promise<HistoryPage> =>
      failures-- > 0 ? Promise.reject(new StoreUnavailableError()) : events.history(channel, afterSeq, limit),
    );
    const { clock, gateway, connect } = await setup({ store: flaky });
    const client = await subscribed(connect, "u1", "user:u1");
    const [a] = await store(events, "user:u1", ["a"]);
    gateway.handleDelivery(live(a!));
    await brokerLoss(gateway, () => store(events, "user:u1", ["b"]));
    for (let i = 0; i < 5; i++) {
      clock.advance(1_000);
      await settle();
    }
    expect(eventIds(client.socket.sent)).toEqual(["a", "b"]);
    expect(client.socket.sent.some((frame) => frame.op === "gap")).toBe(false);
  });

  it("a second loss during a repair keeps the channel held and repairs it from the first position", async () => {
    const events = new MemoryEventStore();
    const gated = gatedHistory(events);
    const { gateway, connect } = await setup({ store: gated.store });
    const client = await subscribed(connect, "u1", "user:u1");
    const [a] = await store(events, "user:u1", ["a"]);
    gateway.handleDelivery(live(a!));
    await brokerLoss(gateway, () => store(events, "user:u1", ["b"]));
    await settle();
    gateway.readinessChanged(false);
    await store(events, "user:u1", ["c"]);
    gated.open();
    await settle();
    // The first repair was cut short by the second loss: nothing of it went out.
    expect(eventIds(client.socket.sent)).toEqual(["a"]);
    gateway.readinessChanged(true);
    await settle();
    expect(eventIds(client.socket.sent)).toEqual(["a", "b", "c"]);
  });

  it("after the grace without a broker, refuses new connections and asks its clients to reconnect; ready again, admits", async () => {
    const { clock, gateway, connect } = await setup();
    const client = connect("u1");
    gateway.readinessChanged(false);
    clock.advance(2_999);
    expect(client.socket.sent.some((frame) => frame.op === "reconnect")).toBe(false);
    expect(() => connect("u2")).not.toThrow();
    clock.advance(1);
    const reconnect = client.socket.sent.find((frame) => frame.op === "reconnect");
    expect(reconnect).toMatchObject({ reason: "broker_unavailable" });
    expect(reconnect?.afterMs).toBeGreaterThanOrEqual(0);
    expect(reconnect?.afterMs).toBeLessThan(10_000);
    expect(() => connect("u3")).toThrow("broker_unavailable");
    // The clients were asked, not closed: a client that stays is repaired when the broker returns.
    expect(client.socket.closedWith).toBeUndefined();
    gateway.readinessChanged(true);
    expect(() => connect("u4")).not.toThrow();
  });

  it("a broker back within the grace moves nobody", async () => {
    const { clock, gateway, connect } = await setup();
    const client = connect("u1");
    gateway.readinessChanged(false);
    clock.advance(1_000);
    gateway.readinessChanged(true);
    clock.advance(10_000);
    expect(client.socket.sent.some((frame) => frame.op === "reconnect")).toBe(false);
  });
});
