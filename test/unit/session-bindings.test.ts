import { describe, expect, it, vi } from "vitest";
import { MemoryBroker } from "../../src/adapters/memory/memory-broker.js";
import { Gateway } from "../../src/core/gateway.js";
import { BUILT_IN_NAMESPACES, NamespaceRegistry } from "../../src/core/namespaces.js";
import type { Authenticator, Principal } from "../../src/core/ports/authenticator.js";
import { silentLogger } from "../../src/core/ports/logger.js";
import { noopMetrics } from "../../src/core/ports/metrics.js";
import { FakeClock } from "../support/fake-clock.js";
import { FakeFanout, FakeSocket } from "../support/fake-socket.js";

const LINGER_MS = 1_000;

async function setup() {
  const clock = new FakeClock();
  const broker = new MemoryBroker({ liveNamespaces: ["post"] });
  const fanout = new FakeFanout();
  const authenticator: Authenticator = { verify: () => Promise.reject(new Error("not used")) };
  let ids = 0;
  const gateway = new Gateway(
    {
      nodeId: "n1",
      heartbeatMs: 25_000,
      ttlMs: 60_000,
      recoveryLimit: 100,
      limits: {
        maxFrameBytes: 65_536,
        connectionRatePerSec: 1_000,
        connectionBurst: 1_000,
        userRatePerSec: 1_000,
        userBurst: 1_000,
        abuseCloseMs: 5_000,
        maxSubscriptions: 128,
        maxConnectionsPerUser: 16,
        maxConnections: 100,
        sendBufferBytes: 1 << 20,
      },
    },
    { broker, fanout, authenticator, namespaces: new NamespaceRegistry(BUILT_IN_NAMESPACES), clock, metrics: noopMetrics, logger: silentLogger, newId: () => `id-${++ids}`, bindLingerMs: LINGER_MS },
  );
  await broker.start(gateway);
  const unbind = vi.spyOn(broker, "unbind");
  const connect = (userId: string) => {
    const principal: Principal = { userId, channelPatterns: [], info: undefined, expiresAtMs: clock.now() + 3_600_000 };
    const admission = gateway.admit(principal);
    if (!admission.ok) throw new Error(admission.reason);
    const socket = new FakeSocket();
    fanout.sockets.add(socket);
    const session = gateway.open(admission.ticket, socket);
    return { socket, session };
  };
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
