import { describe, expect, it } from "vitest";
import { MemoryBroker } from "../../src/adapters/memory/memory-broker.js";
import { AuthenticationError, type Authenticator, type SubscriptionGrant } from "../../src/core/ports/authenticator.js";
import { BUILT_IN_NAMESPACES, NamespaceRegistry } from "../../src/core/namespaces.js";
import { coreGateway } from "../support/core-gateway.js";
import { FakeClock } from "../support/fake-clock.js";

/**
 * Subscription tokens in the core, on a fake clock: when a subscription on
 * one ends, and that the synchronous verification lets a `refresh` sent in
 * the same turn as its `subscribe` find the subscription. The fake
 * authenticator's tokens are names of grants.
 */

const VIP = { name: "vip", subscribe: "token", publish: "none", durable: false, presence: false } as const;

async function setup(options: { syncOnly?: boolean } = {}) {
  const clock = new FakeClock();
  const broker = new MemoryBroker({ liveNamespaces: ["vip", "post"] });
  const grants = new Map<string, SubscriptionGrant>();
  const lookUp = (token: string): SubscriptionGrant => {
    const grant = grants.get(token);
    if (!grant) throw new AuthenticationError(`unknown test token ${token}`);
    return grant;
  };
  const authenticator: Authenticator = {
    verify: () => Promise.reject(new Error("not used")),
    verifySubscriptionNow: lookUp,
    // With `syncOnly`, the asynchronous path never answers: a test passes only if the synchronous one decided.
    verifySubscription: async (token) => (options.syncOnly ? new Promise<never>(() => {}) : lookUp(token)),
  };
  const { gateway, connect } = coreGateway(clock, broker, { authenticator, bindLingerMs: 0, namespaces: new NamespaceRegistry([...BUILT_IN_NAMESPACES, VIP]) });
  await gateway.start();
  await broker.start(gateway);
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  const grant = (token: string, channel: string, lifetimeMs: number, userId = "alice") => grants.set(token, { userId, channel, expiresAtMs: clock.now() + lifetimeMs });
  return { clock, connect, settle, grant };
}

const frame = (value: Record<string, unknown>) => JSON.stringify(value);

describe("a subscription on a subscription token", () => {
  it("ends with `unsubscribed expired` at its token's exp, not before, and its topic is left", async () => {
    const { clock, connect, settle, grant } = await setup();
    grant("t1", "vip:1", 10_000);
    const alice = connect("alice");
    alice.session.receiveText(frame({ op: "subscribe", ref: 1, channel: "vip:1", token: "t1" }), 64);
    await settle();
    expect(alice.socket.sent.at(-1)).toMatchObject({ op: "ok", ref: 1 });
    clock.advance(9_999);
    expect(alice.socket.topics).toEqual(new Set(["vip:1"]));
    clock.advance(1);
    expect(alice.socket.sent.at(-1)).toEqual({ op: "unsubscribed", channel: "vip:1", reason: "expired" });
    expect(alice.socket.topics).toEqual(new Set());
    expect(alice.socket.closedWith).toBeUndefined();
  });

  it("lasts until the refreshed token's exp after a refresh", async () => {
    const { clock, connect, settle, grant } = await setup();
    grant("t1", "vip:1", 10_000);
    grant("t2", "vip:1", 30_000);
    const alice = connect("alice");
    alice.session.receiveText(frame({ op: "subscribe", ref: 1, channel: "vip:1", token: "t1" }), 64);
    await settle();
    clock.advance(5_000);
    alice.session.receiveText(frame({ op: "refresh", ref: 2, channel: "vip:1", token: "t2" }), 64);
    await settle();
    expect(alice.socket.sent.at(-1)).toEqual({ op: "ok", ref: 2 });
    clock.advance(24_999);
    expect(alice.socket.sent.some((sent) => sent.op === "unsubscribed")).toBe(false);
    clock.advance(1);
    expect(alice.socket.sent.at(-1)).toEqual({ op: "unsubscribed", channel: "vip:1", reason: "expired" });
  });

  it("is found by a refresh sent in the same turn as its subscribe (the token decided synchronously)", async () => {
    const { connect, settle, grant } = await setup({ syncOnly: true });
    grant("t1", "vip:1", 10_000);
    grant("t2", "vip:1", 30_000);
    const alice = connect("alice");
    alice.session.receiveText(frame({ op: "subscribe", ref: 1, channel: "vip:1", token: "t1" }), 64);
    alice.session.receiveText(frame({ op: "refresh", ref: 2, channel: "vip:1", token: "t2" }), 64);
    await settle();
    expect(alice.socket.sent.filter((sent) => sent.ref !== undefined)).toEqual([
      { op: "ok", ref: 2 },
      { op: "ok", ref: 1, recovered: false, missed: 0 },
    ]);
  });

  it("cancels its expiry when unsubscribed, so a later subscribe is not ended by the old token's timer", async () => {
    const { clock, connect, settle, grant } = await setup();
    grant("short", "vip:1", 10_000);
    const alice = connect("alice");
    alice.session.receiveText(frame({ op: "subscribe", ref: 1, channel: "vip:1", token: "short" }), 64);
    await settle();
    alice.session.receiveText(frame({ op: "unsubscribe", ref: 2, channel: "vip:1" }), 64);
    grant("long", "vip:1", 60_000);
    alice.session.receiveText(frame({ op: "subscribe", ref: 3, channel: "vip:1", token: "long" }), 64);
    await settle();
    clock.advance(10_000);
    expect(alice.socket.sent.some((sent) => sent.op === "unsubscribed")).toBe(false);
    expect(alice.socket.topics).toEqual(new Set(["vip:1"]));
  });
});
