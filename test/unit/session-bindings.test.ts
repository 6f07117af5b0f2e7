import { describe, expect, it, vi } from "vitest";
import { MemoryBroker } from "../../src/adapters/memory/memory-broker.js";
import { coreGateway } from "../support/core-gateway.js";
import { FakeClock } from "../support/fake-clock.js";

const LINGER_MS = 1_000;

async function setup() {
  const clock = new FakeClock();
  const broker = new MemoryBroker({ liveNamespaces: ["post"] });
  const { gateway, connect } = coreGateway(clock, broker, { bindLingerMs: LINGER_MS });
  await broker.start(gateway);
  const unbind = vi.spyOn(broker, "unbind");
  const subscribe = (session: ReturnType<typeof connect>["session"], channel: string, ref: number) =>
    session.receiveText(JSON.stringify({ op: "subscribe", ref, channel }), 64);
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return { clock, gateway, unbind, connect, subscribe, settle };
}

describe("a session's binding references", () => {
  it("are given back once when the connection closes while its subscribe waits for the binding", async () => {
    const { clock, gateway, unbind, connect, subscribe, settle } = await setup();
    const steady = connect("steady");
    subscribe(steady.session, "post:1", 1);
    await settle();
    expect(steady.socket.topics.has("post:1")).toBe(true);

    const leaving = connect("leaving");
    subscribe(leaving.session, "post:1", 1);
    leaving.session.close(1000, "bye");
    gateway.closed(leaving.session);
    await settle();
    clock.advance(LINGER_MS * 2);
    expect(unbind).not.toHaveBeenCalled();

    steady.session.close(1000, "bye");
    gateway.closed(steady.session);
    clock.advance(LINGER_MS);
    expect(unbind).toHaveBeenCalledTimes(1);
  });

  it("are given back once when unsubscribe overtakes a pending subscribe", async () => {
    const { clock, unbind, connect, subscribe, settle } = await setup();
    const steady = connect("steady");
    subscribe(steady.session, "post:2", 1);
    await settle();
    const fickle = connect("fickle");
    subscribe(fickle.session, "post:2", 1);
    fickle.session.receiveText(JSON.stringify({ op: "unsubscribe", ref: 2, channel: "post:2" }), 64);
    await settle();
    clock.advance(LINGER_MS * 2);
    expect(unbind).not.toHaveBeenCalled();
    expect(fickle.socket.topics.has("post:2")).toBe(false);
    // Every frame got exactly one reply: the unsubscribe's ok, then the subscribe's refusal.
    expect(fickle.socket.sent.filter((frame) => frame.ref !== undefined)).toEqual([
      { op: "ok", ref: 2 },
      { op: "error", ref: 1, code: "not_found", message: "the subscription to post:2 ended before it was made" },
    ]);
  });
});

describe("a subscription the server ends", () => {
  it("sends unsubscribed once, leaves the topic and gives the binding back", async () => {
    const { clock, unbind, connect, subscribe, settle } = await setup();
    const { socket, session } = connect("removed");
    subscribe(session, "post:3", 1);
    await settle();
    expect(socket.topics.has("post:3")).toBe(true);
    expect(session.endSubscription("post:3", "revoked")).toBe(true);
    expect(session.endSubscription("post:3", "revoked")).toBe(false);
    expect(socket.topics.has("post:3")).toBe(false);
    expect(socket.sent.filter((frame) => frame.op === "unsubscribed")).toEqual([
      { op: "unsubscribed", channel: "post:3", reason: "revoked" },
    ]);
    clock.advance(LINGER_MS);
    expect(unbind).toHaveBeenCalledTimes(1);
  });
});

describe("the heartbeat TTL after an event-loop stall", () => {
  it("is not judged in the late inspection right after a stall, and is judged on time again", async () => {
    const { clock, gateway, connect } = await setup();
    gateway.start();
    const { socket, session } = connect("sleepy");
    // Longer than the 60 s TTL: the late inspection must not close a socket whose pings are still unread.
    clock.stall(120_000);
    expect(socket.closedWith).toBeUndefined();
    session.receiveText(JSON.stringify({ op: "ping" }), 13);
    clock.advance(59_000);
    expect(socket.closedWith).toBeUndefined();
    clock.advance(2_000);
    expect(socket.closedWith?.code).toBe(4008);
    await gateway.stop();
  });
});
