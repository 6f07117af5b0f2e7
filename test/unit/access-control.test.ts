import { describe, expect, it } from "vitest";
import { MemoryBroker } from "../../src/adapters/memory/memory-broker.js";
import { MemoryEventStore } from "../../src/adapters/memory/memory-event-store.js";
import type { Authenticator, Principal } from "../../src/core/ports/authenticator.js";
import type { LiveDelivery } from "../../src/core/ports/broker.js";
import type { EventStore } from "../../src/core/ports/event-store.js";
import { type Metrics, noopMetrics } from "../../src/core/ports/metrics.js";
import { CloseCode } from "@sobranie/protocol/codes";
import { encodeControl, type ControlCommand } from "@sobranie/protocol/control";
import { Revocations } from "../../src/core/revocations.js";
import { coreGateway } from "../support/core-gateway.js";
import { FakeClock } from "../support/fake-clock.js";

/** Tokens of the fake authenticator: a refresh frame's `token` names one of these. */
type Tokens = Record<string, Principal>;

async function setup(options: { store?: EventStore; tokens?: Tokens } = {}) {
  const clock = new FakeClock();
  const broker = new MemoryBroker({ liveNamespaces: ["post"] });
  const applied: string[] = [];
  const deadLetters: string[] = [];
  const metrics: Metrics = { ...noopMetrics, controlCommandApplied: (command) => applied.push(command), deadLettered: (reason) => deadLetters.push(reason) };
  const tokens = options.tokens ?? {};
  const authenticator: Authenticator = {
    verify: async (token) => {
      const principal = tokens[token];
      if (!principal) throw new Error(`unknown test token ${token}`);
      return principal;
    },
    verifySubscription: () => Promise.reject(new Error("not used")),
  };
  const { gateway, connect } = coreGateway(clock, broker, { metrics, authenticator, bindLingerMs: 0, store: options.store });
  await gateway.start();
  await broker.start(gateway);
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  const control = (command: ControlCommand | string) => {
    const body = new TextEncoder().encode(typeof command === "string" ? command : encodeControl(command));
    const delivery: LiveDelivery = { routingKey: "control", body, messageId: undefined, timestampMs: undefined };
    return gateway.handleControl(delivery);
  };
  const subscribe = async (client: ReturnType<typeof connect>, channel: string, ref: number) => {
    client.session.receiveText(JSON.stringify({ op: "subscribe", ref, channel }), 64);
    await settle();
    return client.socket.sent.find((frame) => frame.ref === ref);
  };
  return { clock, gateway, connect, control, subscribe, settle, applied, deadLetters };
}

const ROOMS = { channelPatterns: ["room:*"] };

describe("control commands on one node", () => {
  it("disconnect closes every session of the user, 4003 when final and 4001 to reauthenticate, and no one else's", async () => {
    const { connect, control, applied } = await setup();
    const [a1, a2, bob] = [connect("alice"), connect("alice"), connect("bob")];
    expect(control({ command: "disconnect", user: "alice", mode: "final", reason: "banned" })).toEqual({ kind: "delivered" });
    expect([a1.socket.closedWith, a2.socket.closedWith]).toEqual([
      { code: CloseCode.Revoked, reason: "banned" },
      { code: CloseCode.Revoked, reason: "banned" },
    ]);
    expect(bob.socket.closedWith).toBeUndefined();
    control({ command: "disconnect", user: "bob", mode: "reauthenticate" });
    expect(bob.socket.closedWith?.code).toBe(CloseCode.TokenExpired);
    expect(applied).toEqual(["disconnect", "disconnect"]);
  });

  it("disconnect reaches a session signed in as the user (Gateway.signIn), and no longer once it closed", async () => {
    const { connect, control, gateway } = await setup();
    const signedIn = connect("socket-1");
    const other = connect("socket-2");
    gateway.signIn(signedIn.session, "alice");
    // A second signin of the same session changes nothing.
    gateway.signIn(signedIn.session, "bob");
    control({ command: "disconnect", user: "bob", mode: "final" });
    expect(signedIn.socket.closedWith).toBeUndefined();
    control({ command: "disconnect", user: "alice", mode: "final" });
    expect(signedIn.socket.closedWith?.code).toBe(CloseCode.Revoked);
    expect(other.socket.closedWith).toBeUndefined();
    gateway.closed(signedIn.session);
    gateway.signIn(other.session, "carol");
    control({ command: "disconnect", user: "socket-2", mode: "final" });
    expect(other.socket.closedWith?.code).toBe(CloseCode.Revoked);
  });

  it("unsubscribe ends the subscription with `unsubscribed revoked`, delivers nothing more, and refuses the same token's subscribe", async () => {
    const { connect, control, subscribe, gateway, clock } = await setup();
    const alice = connect("alice", { ...ROOMS, issuedAtMs: clock.now() - 1_000 });
    expect(await subscribe(alice, "room:7", 1)).toMatchObject({ op: "ok" });
    expect(await subscribe(alice, "room:8", 2)).toMatchObject({ op: "ok" });
    control({ command: "unsubscribe", user: "alice", channel: "room:7" });
    expect(alice.socket.sent.at(-1)).toEqual({ op: "unsubscribed", channel: "room:7", reason: "revoked" });
    expect(alice.socket.topics).toEqual(new Set(["room:8"]));
    expect(alice.socket.closedWith).toBeUndefined();
    expect(await subscribe(alice, "room:7", 3)).toMatchObject({ op: "error", code: "forbidden" });
    // A new connection with a token issued before the removal is refused too; one issued after it is not.
    const again = connect("alice", { ...ROOMS, issuedAtMs: clock.now() - 1_000 });
    expect(await subscribe(again, "room:7", 1)).toMatchObject({ op: "error", code: "forbidden" });
    clock.advance(2_000);
    const fresh = connect("alice", { ...ROOMS, issuedAtMs: clock.now() });
    expect(await subscribe(fresh, "room:7", 1)).toMatchObject({ op: "ok" });
    await gateway.stop();
  });

  it("revoke by tokenId closes sessions on that token with 4001 and refuses it on connect; other tokens stay", async () => {
    const { connect, control, gateway } = await setup();
    const revoked = connect("alice", { tokenId: "t1" });
    const other = connect("alice", { tokenId: "t2" });
    control({ command: "revoke", user: "alice", tokenId: "t1" });
    expect(revoked.socket.closedWith?.code).toBe(CloseCode.TokenExpired);
    expect(other.socket.closedWith).toBeUndefined();
    const principal = (tokenId: string): Principal => ({ userId: "alice", channelPatterns: [], info: undefined, expiresAtMs: Date.now() + 60_000, tokenId });
    expect(gateway.admit(principal("t1"))).toEqual({ ok: false, reason: "revoked" });
    expect(gateway.admit({ ...principal("t1"), userId: "bob" }).ok).toBe(true);
    expect(gateway.admit(principal("t2")).ok).toBe(true);
  });

  it("revoke issuedBefore covers older tokens and those without iat, not newer ones", async () => {
    const { connect, control, gateway, clock } = await setup();
    const now = clock.now();
    const old = connect("alice", { issuedAtMs: now - 10_000 });
    const noIat = connect("alice");
    const newer = connect("alice", { issuedAtMs: now + 1_000 });
    control({ command: "revoke", user: "alice", issuedBefore: now });
    expect([old.socket.closedWith?.code, noIat.socket.closedWith?.code, newer.socket.closedWith]).toEqual([CloseCode.TokenExpired, CloseCode.TokenExpired, undefined]);
    const principal: Principal = { userId: "alice", channelPatterns: [], info: undefined, expiresAtMs: now + 60_000, issuedAtMs: now - 1 };
    expect(gateway.admit(principal)).toEqual({ ok: false, reason: "revoked" });
    expect(gateway.admit({ ...principal, issuedAtMs: now }).ok).toBe(true);
  });

  it("a refresh is refused for a revoked token and keeps the connection on its current one", async () => {
    const { connect, control, clock } = await setup({
      tokens: { revoked: { userId: "alice", channelPatterns: [], info: undefined, expiresAtMs: Date.now() + 60_000, tokenId: "t9" } },
    });
    const alice = connect("alice", { tokenId: "t1" });
    control({ command: "revoke", user: "alice", tokenId: "t9", expiresAt: clock.now() + 60_000 });
    alice.session.receiveText(JSON.stringify({ op: "refresh", ref: 1, token: "revoked" }), 64);
    await new Promise((resolve) => setImmediate(resolve));
    expect(alice.socket.sent.at(-1)).toEqual({ op: "error", ref: 1, code: "unauthorized", message: "token revoked" });
    expect(alice.socket.closedWith).toBeUndefined();
  });

  it("a refresh whose token drops a room ends that subscription with `unsubscribed forbidden`, before its ok", async () => {
    const principal = (channelPatterns: string[]): Principal => ({ userId: "alice", channelPatterns, info: undefined, expiresAtMs: Date.now() + 60_000 });
    const { connect, subscribe, settle } = await setup({ tokens: { narrower: principal(["room:8"]) } });
    const alice = connect("alice", ROOMS);
    await subscribe(alice, "room:7", 1);
    await subscribe(alice, "room:8", 2);
    await subscribe(alice, "user:alice", 3);
    alice.session.receiveText(JSON.stringify({ op: "refresh", ref: 4, token: "narrower" }), 64);
    await settle();
    expect(alice.socket.sent.slice(-2)).toEqual([
      { op: "unsubscribed", channel: "room:7", reason: "forbidden" },
      { op: "ok", ref: 4 },
    ]);
    expect(alice.socket.topics).toEqual(new Set(["room:8", "user:alice"]));
  });

  it("dead-letters a bad control message with a control_ reason, and the next one still applies", async () => {
    const { connect, control, deadLetters, applied } = await setup();
    const alice = connect("alice");
    expect(control("{nope")).toMatchObject({ kind: "dead-letter", reason: "control_not_json" });
    expect(control('{"command":"disconnect","user":"alice"}')).toEqual({ kind: "dead-letter", reason: "control_invalid", message: "mode is required" });
    control({ command: "disconnect", user: "alice", mode: "final" });
    expect(alice.socket.closedWith?.code).toBe(CloseCode.Revoked);
    expect(deadLetters).toEqual(["control_not_json", "control_invalid"]);
    expect(applied).toEqual(["disconnect"]);
  });
});

describe("the revocation index", () => {
  const limits = { maxTokenLifetimeMs: 60_000, maxEntries: 3 };
  const alice = (claims: Partial<Principal>): Principal => ({ userId: "alice", channelPatterns: [], info: undefined, expiresAtMs: 0, ...claims });

  it("keeps an entry until no token it matches can be valid: the token's exp, else the longest token lifetime", () => {
    const index = new Revocations(limits);
    index.add(Revocations.ofRevoke({ command: "revoke", user: "alice", tokenId: "t1", expiresAt: 5_000 }, 1_000, limits), 1_000);
    index.add(Revocations.ofRevoke({ command: "revoke", user: "alice", tokenId: "t2" }, 1_000, limits), 1_000);
    index.add(Revocations.ofRevoke({ command: "revoke", user: "alice", issuedBefore: 2_000 }, 1_000, limits), 1_000);
    expect(index.isRevoked(alice({ tokenId: "t1", issuedAtMs: 9_000 }), 4_999)).toBe(true);
    expect(index.isRevoked(alice({ tokenId: "t1", issuedAtMs: 9_000 }), 5_000)).toBe(false);
    expect(index.isRevoked(alice({ tokenId: "t2", issuedAtMs: 9_000 }), 60_999)).toBe(true);
    expect(index.isRevoked(alice({ tokenId: "t2", issuedAtMs: 9_000 }), 61_000)).toBe(false);
    expect(index.isRevoked(alice({ issuedAtMs: 1_000 }), 61_999)).toBe(true);
    expect(index.isRevoked(alice({ issuedAtMs: 1_000 }), 62_000)).toBe(false);
    expect(index.prune(62_000)).toBe(3);
    expect(index.size).toBe(0);
  });

  it("keeps one issuedBefore per user, the latest, and stays within maxEntries by dropping the oldest", () => {
    const index = new Revocations(limits);
    for (const issuedBefore of [3_000, 1_000]) index.add(Revocations.ofRevoke({ command: "revoke", user: "alice", issuedBefore }, 0, limits), 0);
    expect(index.size).toBe(1);
    expect(index.isRevoked(alice({ issuedAtMs: 2_000 }), 0)).toBe(true);
    const dropped = ["t1", "t2", "t3"].map((tokenId) => index.add(Revocations.ofRevoke({ command: "revoke", user: "alice", tokenId }, 0, limits), 0));
    expect(dropped).toEqual([0, 0, 1]);
    expect(index.size).toBe(3);
    expect(index.isRevoked(alice({ issuedAtMs: 9_000 }), 0)).toBe(false);
    expect(index.isRevoked(alice({ tokenId: "t3", issuedAtMs: 9_000 }), 0)).toBe(true);
  });
});

describe("revocations with a store", () => {
  it("are saved by the node that receives them and loaded by a node started later, before it is ready", async () => {
    const store = new MemoryEventStore();
    await store.start();
    const first = await setup({ store });
    first.control({ command: "revoke", user: "alice", tokenId: "t1" });
    first.control({ command: "unsubscribe", user: "alice", channel: "room:7" });
    await first.settle();
    expect((await store.loadRevocations(first.clock.now())).map((revocation) => revocation.kind).sort()).toEqual(["channel", "token"]);

    const later = await setup({ store });
    await later.settle();
    expect(later.gateway.readiness().checks.revocations).toBe(true);
    const principal: Principal = { userId: "alice", channelPatterns: ["room:*"], info: undefined, expiresAtMs: Date.now() + 60_000, tokenId: "t1" };
    expect(later.gateway.admit(principal)).toEqual({ ok: false, reason: "revoked" });
    const other = later.connect("alice", { channelPatterns: ["room:*"], tokenId: "t2", issuedAtMs: 0 });
    expect(await later.subscribe(other, "room:7", 1)).toMatchObject({ op: "error", code: "forbidden" });
  });

  it("a node whose store is away is not ready until the revocations are loaded", async () => {
    const store = new MemoryEventStore();
    const { gateway, clock, settle } = await setup({ store });
    await settle();
    expect(gateway.readiness().checks.revocations).toBe(false);
    expect(gateway.isReady()).toBe(false);
    await store.start();
    clock.advance(2_000);
    await settle();
    expect(gateway.readiness().checks.revocations).toBe(true);
  });
});
