import { describe, expect, it } from "vitest";
import { MemoryBroker } from "../../src/adapters/memory/memory-broker.js";
import type { GatewayOptions } from "../../src/core/gateway-options.js";
import type { IngressLimits } from "../../src/core/limits.js";
import { AuthenticationError, type Authenticator, type Principal } from "../../src/core/ports/authenticator.js";
import { coreGateway, request } from "../support/core-gateway.js";
import { FakeClock } from "../support/fake-clock.js";

/**
 * A connection's life as the core decides it (docs/protocol.md §5 and the
 * close-code policy), on a fake clock: the fast counterpart of
 * test/integration/lifecycle.test.ts. The fake authenticator's connection
 * tokens are names of principals. /readyz and the HTTP status of a refused
 * upgrade are the transport's; the core's readiness and admission answers
 * are tested here.
 */

async function setup(options: Partial<Omit<GatewayOptions, "limits">> & { limits?: Partial<IngressLimits> } = {}) {
  const clock = new FakeClock();
  const broker = new MemoryBroker({ liveNamespaces: ["post"] });
  const tokens = new Map<string, Principal>();
  const authenticator: Authenticator = {
    verify: async (token) => {
      const principal = tokens.get(token);
      if (!principal) throw new AuthenticationError(`unknown test token ${token}`);
      return principal;
    },
    verifySubscription: () => Promise.reject(new Error("not used")),
  };
  const { gateway, connect } = coreGateway(clock, broker, { authenticator, bindLingerMs: 0 }, options);
  await gateway.start();
  await broker.start(gateway);
  const token = (name: string, userId: string, lifetimeMs: number) =>
    tokens.set(name, { userId, channelPatterns: [], info: undefined, expiresAtMs: clock.now() + lifetimeMs });
  const principal = (userId: string): Principal => ({ userId, channelPatterns: [], info: undefined, expiresAtMs: clock.now() + 3_600_000 });
  return { clock, broker, gateway, connect, token, principal };
}

describe("heartbeat TTL", () => {
  it("closes 4008 a client silent past ttlMs, and keeps those that send frames or WebSocket pings", async () => {
    const { clock, connect } = await setup();
    const silent = connect("a");
    const pinging = connect("b");
    const wsPinging = connect("c");
    for (let elapsed = 0; elapsed < 60_000; elapsed += 10_000) {
      clock.advance(10_000);
      pinging.session.receiveText(JSON.stringify({ op: "ping" }), 15);
      wsPinging.session.heard();
    }
    expect(silent.socket.closedWith).toBeUndefined();
    // Judged at the next inspection (every 250 ms) once the silence is over ttlMs.
    clock.advance(250);
    expect(silent.socket.closedWith).toMatchObject({ code: 4008 });
    expect(pinging.socket.closedWith).toBeUndefined();
    expect(wsPinging.socket.closedWith).toBeUndefined();
  });
});

describe("token expiry", () => {
  it("closes 4001 at the token's exp", async () => {
    const { clock, connect } = await setup();
    const expiring = connect("ann", { expiresAtMs: clock.now() + 1_000 });
    clock.advance(999);
    expect(expiring.socket.closedWith).toBeUndefined();
    clock.advance(1);
    expect(expiring.socket.closedWith).toMatchObject({ code: 4001 });
  });

  it("refuses a refresh for another user or with a bad token, and a refresh for the same user moves the close to the new exp", async () => {
    const { clock, connect, token } = await setup();
    token("bobs", "bob", 60_000);
    token("anns", "ann", 60_000);
    const refreshed = connect("ann", { expiresAtMs: clock.now() + 1_000 });
    expect(await request(refreshed, { op: "refresh", token: "bobs" })).toMatchObject({ op: "error", code: "forbidden" });
    expect(await request(refreshed, { op: "refresh", token: "garbage" })).toMatchObject({ op: "error", code: "unauthorized" });
    expect(await request(refreshed, { op: "refresh", token: "anns" })).toMatchObject({ op: "ok" });
    clock.advance(1_000);
    expect(refreshed.socket.closedWith).toBeUndefined();
    expect(await request(refreshed, { op: "ping" })).toMatchObject({ op: "pong" });
    clock.advance(58_999);
    expect(refreshed.socket.closedWith).toBeUndefined();
    clock.advance(1);
    expect(refreshed.socket.closedWith).toMatchObject({ code: 4001 });
  });
});

describe("send buffer", () => {
  it("closes 4013 a client whose unsent bytes pass the limit, while another on the same channel gets every event", async () => {
    const { clock, broker, connect } = await setup({ limits: { sendBufferBytes: 262_144 } });
    const slow = connect("slow");
    const fast = connect("fast");
    expect(await request(slow, { op: "subscribe", channel: "post:1" })).toMatchObject({ op: "ok" });
    expect(await request(fast, { op: "subscribe", channel: "post:1" })).toMatchObject({ op: "ok" });
    slow.socket.buffered = 262_144;
    clock.advance(250);
    expect(slow.socket.closedWith).toBeUndefined();
    slow.socket.buffered = 262_145;
    for (let i = 0; i < 3; i++) broker.deliverLive("post.1.big", JSON.stringify({ id: `big-${i}`, type: "big", data: {} }));
    await new Promise((resolve) => setImmediate(resolve));
    clock.advance(250);
    expect(slow.socket.closedWith).toMatchObject({ code: 4013 });
    expect(fast.socket.closedWith).toBeUndefined();
    expect(fast.socket.sent.filter((frame) => frame.op === "event").map((frame) => frame.id)).toEqual(["big-0", "big-1", "big-2"]);
  });
});

describe("admission", () => {
  it("refuses a connection at capacity (HTTP 503 at the edge) until one closes", async () => {
    const { gateway, connect, principal } = await setup({ limits: { maxConnections: 2 } });
    const open = [connect("a"), connect("b")];
    expect(gateway.admit(principal("c"))).toEqual({ ok: false, reason: "capacity" });
    gateway.closed(open[0]!.session);
    expect(gateway.admit(principal("c")).ok).toBe(true);
  });
});

describe("drain", () => {
  it("stops accepting, sends every client reconnect within the grace period, then closes 1012 whoever is left", async () => {
    const { clock, gateway, connect, principal } = await setup();
    const clients = [connect("a"), connect("b")];
    let drained = false;
    const draining = gateway.drain(500).then(() => (drained = true));
    expect(gateway.readiness()).toMatchObject({ ready: false, checks: { accepting: false } });
    expect(gateway.admit(principal("c"))).toEqual({ ok: false, reason: "draining" });
    for (const { socket } of clients) {
      const reconnect = socket.sent.find((frame) => frame.op === "reconnect");
      expect(reconnect).toMatchObject({ reason: "drain", afterMs: expect.any(Number) });
      expect(reconnect!.afterMs).toBeGreaterThanOrEqual(0);
      expect(reconnect!.afterMs).toBeLessThan(500);
    }
    clock.advance(499);
    await Promise.resolve();
    expect(drained).toBe(false);
    expect(clients[0]!.socket.closedWith).toBeUndefined();
    clock.advance(1);
    await draining;
    for (const { socket } of clients) expect(socket.closedWith).toMatchObject({ code: 1012 });
  });

  it("ends early once every client has left", async () => {
    const { clock, gateway, connect } = await setup();
    const client = connect("a");
    const draining = gateway.drain(10_000);
    gateway.closed(client.session);
    clock.advance(50);
    await draining;
    expect(client.socket.closedWith).toBeUndefined();
    expect(gateway.connectionCount()).toBe(0);
  });
});
