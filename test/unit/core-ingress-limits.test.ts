import { describe, expect, it } from "vitest";
import { MemoryBroker, type MemoryMessage } from "../../src/adapters/memory/memory-broker.js";
import type { IngressLimits } from "../../src/core/limits.js";
import { coreGateway, request } from "../support/core-gateway.js";
import { FakeClock } from "../support/fake-clock.js";

/**
 * The ingress limits of docs/protocol.md §5 that the core enforces, on test
 * doubles with the documented defaults: the fast counterpart of
 * test/integration/ingress-limits.test.ts. Time stands still unless a test
 * advances the fake clock, so buckets refill only when told. Frames over
 * twice the limit (cut by uWS with 1006) and the HTTP status of a refused
 * upgrade are the transport's; the core's admission answer is tested here.
 */

const DEFAULTS: Partial<IngressLimits> = {
  connectionRatePerSec: 20,
  connectionBurst: 40,
  userRatePerSec: 50,
  userBurst: 100,
  abuseCloseMs: 5_000,
  maxConnectionsPerUser: 3,
};

async function setup(limits: Partial<IngressLimits> = {}) {
  const clock = new FakeClock();
  const toBackends: MemoryMessage[] = [];
  const broker = new MemoryBroker({ liveNamespaces: ["post"], onEventsPublish: (message) => toBackends.push(message) });
  const { gateway, connect } = coreGateway(clock, broker, { bindLingerMs: 0 }, { limits: { ...DEFAULTS, ...limits } });
  await broker.start(gateway);
  return { clock, broker, gateway, connect, toBackends };
}

type Client = ReturnType<Awaited<ReturnType<typeof setup>>["connect"]>;

/** Sends a text frame as the transport would hand it over. */
const send = (client: Client, text: string, byteLength = new TextEncoder().encode(text).byteLength) => client.session.receiveText(text, byteLength);
const errors = (client: Client, code: string) => client.socket.sent.filter((frame) => frame.op === "error" && frame.code === code);
const nested = (levels: number): unknown => (levels === 0 ? 1 : [nested(levels - 1)]);

describe("frame size", () => {
  it("answers a frame over 64 KiB with too_large echoing its ref, then closes 1009", async () => {
    const { connect } = await setup();
    const client = connect("alice");
    send(client, JSON.stringify({ op: "ping", ref: 7 }), 65_537);
    expect(client.socket.sent.at(-1)).toMatchObject({ op: "error", code: "too_large", ref: 7 });
    expect(client.socket.closedWith).toMatchObject({ code: 1009 });
  });

  it("accepts a frame of exactly 64 KiB", async () => {
    const { connect } = await setup();
    const client = connect("alice");
    const frame = JSON.stringify({ op: "ping", ref: 1, pad: "" });
    send(client, JSON.stringify({ op: "ping", ref: 1, pad: "x".repeat(65_536 - frame.length) }));
    expect(client.socket.sent.at(-1)).toEqual({ op: "pong", ref: 1 });
    expect(client.socket.closedWith).toBeUndefined();
  });

  it("closes 1009 for an oversized binary frame too", async () => {
    const { connect } = await setup();
    const client = connect("alice");
    client.session.receiveBinary(65_537);
    expect(client.socket.sent.at(-1)).toMatchObject({ op: "error", code: "too_large" });
    expect(client.socket.closedWith).toMatchObject({ code: 1009 });
  });
});

describe("bad frames", () => {
  it("answers invalid JSON, unknown ops, bad fields and binary frames with bad_request and stays usable", async () => {
    const { connect } = await setup();
    const client = connect("alice");
    send(client, "{not json");
    expect(client.socket.sent.at(-1)).toMatchObject({ op: "error", code: "bad_request" });
    expect(await request(client, { op: "teleport" })).toMatchObject({ op: "error", code: "bad_request" });
    expect(await request(client, { op: "subscribe", channel: 42 })).toMatchObject({ op: "error", code: "bad_request" });
    client.session.receiveBinary(3);
    expect(client.socket.sent.at(-1)).toMatchObject({ op: "error", code: "bad_request" });
    expect(await request(client, { op: "ping" })).toMatchObject({ op: "pong" });
    expect(client.socket.closedWith).toBeUndefined();
  });

  it("refuses publish data nested over 64 levels, or holding a number beyond a double, publishing nothing; takes 64 levels", async () => {
    const { connect, toBackends } = await setup();
    const client = connect("alice", { channelPatterns: ["room:1"] });
    expect(await request(client, { op: "publish", channel: "room:1", type: "t", data: nested(65) })).toMatchObject({ op: "error", code: "bad_request" });
    send(client, '{"op":"publish","ref":900,"channel":"room:1","type":"t","data":{"n":1e400}}');
    expect(client.socket.sent.at(-1)).toMatchObject({ op: "error", code: "bad_request", ref: 900 });
    expect(toBackends).toEqual([]);
    expect(await request(client, { op: "publish", channel: "room:1", type: "t", data: nested(64) })).toMatchObject({ op: "ok" });
    expect(toBackends).toHaveLength(1);
  });

  it("refuses a status request naming a user outside the channel-id grammar, naming the entry by position", async () => {
    const { connect } = await setup();
    const client = connect("alice");
    for (const bad of ["a.b", "a b", "", "x".repeat(129)]) {
      expect(await request(client, { op: "status", users: ["bob", bad] })).toMatchObject({ op: "error", code: "bad_request", message: expect.stringContaining("users.1") });
    }
    expect(await request(client, { op: "status", users: ["bob", "A_z-9"] })).toMatchObject({ op: "ok", users: expect.any(Object) });
  });
});

describe("frame rate", () => {
  it("refuses past a connection's burst with retryAfterMs, echoing the refused frame's ref without acting on it", async () => {
    const { connect, broker } = await setup();
    const client = connect("alice");
    for (let i = 0; i < 40; i++) send(client, JSON.stringify({ op: "ping", ref: 1000 + i }));
    send(client, JSON.stringify({ op: "subscribe", ref: 1, channel: "post:1" }));
    send(client, "{not json");
    const refused = errors(client, "rate_limited");
    expect(refused).toEqual([
      { op: "error", code: "rate_limited", ref: 1, message: expect.any(String), retryAfterMs: 50 },
      // A refused frame that is not even JSON has no ref to echo, and still gets its one reply.
      { op: "error", code: "rate_limited", message: expect.any(String), retryAfterMs: 50 },
    ]);
    expect(client.socket.sent.filter((frame) => frame.op === "pong")).toHaveLength(40);
    expect(client.socket.sent.filter((frame) => frame.ref === 1)).toHaveLength(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(client.socket.topics).toEqual(new Set());
    expect(broker.boundPrefixes()).toEqual([]);
  });

  it("takes frames again once the bucket refilled", async () => {
    const { clock, connect } = await setup();
    const client = connect("alice");
    for (let i = 0; i < 41; i++) send(client, JSON.stringify({ op: "ping" }));
    expect(errors(client, "rate_limited")).toHaveLength(1);
    clock.advance(50);
    expect(await request(client, { op: "ping" })).toMatchObject({ op: "pong" });
  });

  it("limits a user across their connections on the node", async () => {
    const { connect } = await setup();
    const [a, b, c] = [connect("alice"), connect("alice"), connect("alice")];
    // 3 connections × burst 40 = 120 > the user's burst of 100.
    for (const client of [a, b, c]) for (let i = 0; i < 40; i++) send(client, JSON.stringify({ op: "ping" }));
    expect(errors(a, "rate_limited")).toHaveLength(0);
    expect(errors(b, "rate_limited")).toHaveLength(0);
    expect(errors(c, "rate_limited")).toEqual(Array.from({ length: 20 }, () => expect.objectContaining({ retryAfterMs: 20 })));
    // Another user's budget is their own.
    const bob = connect("bob");
    expect(await request(bob, { op: "ping" })).toMatchObject({ op: "pong" });
  });

  it("closes 4029 once refusals have lasted abuseCloseMs, and not before", async () => {
    const { clock, connect } = await setup();
    const client = connect("alice");
    const flood = () => {
      for (let i = 0; i < 20; i++) send(client, JSON.stringify({ op: "ping" }));
    };
    // The burst spent at once, so refusals begin at time 0.
    for (let i = 0; i < 40; i++) send(client, JSON.stringify({ op: "ping" }));
    for (let elapsed = 0; elapsed < 5_000; elapsed += 100) {
      flood();
      clock.advance(100);
    }
    expect(client.socket.closedWith).toBeUndefined();
    flood();
    expect(client.socket.closedWith).toMatchObject({ code: 4029 });
  });

  it("lets a pause of a second end a streak of refusals", async () => {
    const { clock, connect } = await setup();
    const client = connect("alice");
    const floodFor = (ms: number) => {
      for (let elapsed = 0; elapsed < ms; elapsed += 100) {
        for (let i = 0; i < 20; i++) send(client, JSON.stringify({ op: "ping" }));
        clock.advance(100);
      }
    };
    floodFor(4_000);
    // Long enough to end the streak, too short for the bucket to refill past the next flood.
    clock.advance(1_001);
    floodFor(4_000);
    expect(client.socket.closedWith).toBeUndefined();
    expect(errors(client, "rate_limited").length).toBeGreaterThan(0);
  });
});

describe("subscriptions and connections", () => {
  it("allows at most 128 subscriptions per connection; a repeated subscribe still answers ok", async () => {
    const { connect } = await setup({ connectionBurst: 1_000, userBurst: 1_000 });
    const client = connect("alice");
    const replies = await Promise.all(Array.from({ length: 128 }, (_, i) => request(client, { op: "subscribe", channel: `post:${i}` })));
    expect(replies.every((reply) => reply.op === "ok")).toBe(true);
    expect(await request(client, { op: "subscribe", channel: "post:extra" })).toMatchObject({ op: "error", code: "limit_exceeded" });
    expect(await request(client, { op: "subscribe", channel: "post:0" })).toMatchObject({ op: "ok" });
    expect(await request(client, { op: "unsubscribe", channel: "post:0" })).toMatchObject({ op: "ok" });
    expect(await request(client, { op: "subscribe", channel: "post:extra" })).toMatchObject({ op: "ok" });
  });

  it("refuses a user's connection past the per-user limit (HTTP 429 at the edge) until one of them closes", async () => {
    const { clock, gateway, connect } = await setup();
    const open = [connect("alice"), connect("alice"), connect("alice")];
    const principal = { userId: "alice", channelPatterns: [], info: undefined, expiresAtMs: clock.now() + 3_600_000 };
    expect(gateway.admit(principal)).toEqual({ ok: false, reason: "too_many_connections" });
    expect(gateway.admit({ ...principal, userId: "bob" }).ok).toBe(true);
    gateway.closed(open[0]!.session);
    expect(gateway.admit(principal).ok).toBe(true);
  });
});
