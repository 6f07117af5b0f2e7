import { describe, expect, it, vi } from "vitest";
import { MemoryBroker } from "../../src/adapters/memory/memory-broker.js";
import type { LiveDelivery } from "../../src/core/ports/broker.js";
import { type Metrics, noopMetrics } from "../../src/core/ports/metrics.js";
import { coreGateway } from "../support/core-gateway.js";
import { FakeClock } from "../support/fake-clock.js";

const LINGER_MS = 1_000;

/** A gateway with `user` bound as a whole, started the way the app does: gateway first, then the broker. */
async function setup() {
  const clock = new FakeClock();
  const broker = new MemoryBroker({ liveNamespaces: ["post"] });
  const bind = vi.spyOn(broker, "bind");
  const drops: string[] = [];
  const deadLetters: string[] = [];
  const metrics: Metrics = { ...noopMetrics, unsubscribedDropped: (namespace) => drops.push(namespace), deadLettered: (reason) => deadLetters.push(reason) };
  const { gateway, connect } = coreGateway(clock, broker, { metrics, bindLingerMs: LINGER_MS, bindWholeNamespaces: ["user"] });
  gateway.start();
  await broker.start(gateway);
  const delivery = (routingKey: string, body: string): LiveDelivery => ({ routingKey, body: new TextEncoder().encode(body), messageId: undefined, timestampMs: undefined });
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return { clock, gateway, bind, connect, delivery, settle, drops, deadLetters };
}

describe("a gateway with a namespace bound as a whole", () => {
  it("binds the namespace once, not its channels, and drops events of channels nobody here subscribed to", async () => {
    const { clock, gateway, bind, connect, delivery, settle, drops, deadLetters } = await setup();
    const alice = connect("alice");
    alice.session.receiveText(JSON.stringify({ op: "subscribe", ref: 1, channel: "user:alice" }), 64);
    await settle();
    expect(alice.socket.sent.at(-1)).toMatchObject({ op: "ok", ref: 1 });
    expect(bind.mock.calls.map(([prefix]) => prefix)).toEqual(["user"]);

    // Not even decoded: a body that would be dead-lettered is dropped and counted instead.
    expect(gateway.handleDelivery(delivery("user.bob.note", "not json"))).toEqual({ kind: "delivered" });
    gateway.handleDelivery(delivery("user.alice.note", JSON.stringify({ id: "e1", type: "note", data: {} })));
    expect(alice.socket.sent.at(-1)).toMatchObject({ op: "event", channel: "user:alice", id: "e1" });
    expect(drops).toEqual(["user"]);
    expect(deadLetters).toEqual([]);

    // After the last subscriber left and the linger passed, the channel's events are dropped too.
    alice.session.close(1000, "bye");
    gateway.closed(alice.session);
    clock.advance(LINGER_MS);
    gateway.handleDelivery(delivery("user.alice.note", JSON.stringify({ id: "e2", type: "note", data: {} })));
    expect(drops).toEqual(["user", "user"]);
    expect(bind).toHaveBeenCalledTimes(1);
    await gateway.stop();
  });
});
