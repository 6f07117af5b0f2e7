import { describe, expect, it } from "vitest";
import { MemoryBroker, type MemoryMessage } from "../../src/adapters/memory/memory-broker.js";
import { BUILT_IN_NAMESPACES, NamespaceRegistry, type NamespacePolicy } from "../../src/core/namespaces.js";
import { AuthenticationError, type Authenticator, type SubscriptionGrant } from "../../src/core/ports/authenticator.js";
import { coreGateway, request } from "../support/core-gateway.js";
import { FakeClock } from "../support/fake-clock.js";

/**
 * Who may subscribe and publish where (docs/protocol.md §2), decided by the
 * core on test doubles: the fast counterpart of
 * test/integration/authorization.test.ts and the refusals of
 * client-publish.test.ts. The fake authenticator's subscription tokens are
 * names of grants. Authentication before the upgrade (HTTP 401) is the JWT
 * adapter's and the transport's, tested in jwt-refusals.test.ts and there.
 */

const VIP: NamespacePolicy = { name: "vip", subscribe: "token", publish: "none", durable: false, presence: false };
const TYPING: NamespacePolicy = { name: "typing", subscribe: "any", publish: "broadcast", durable: false, presence: false };

async function setup() {
  const clock = new FakeClock();
  const toBackends: MemoryMessage[] = [];
  const broker = new MemoryBroker({ liveNamespaces: ["post", "status", "vip", "typing"], onEventsPublish: (message) => toBackends.push(message) });
  const grants = new Map<string, SubscriptionGrant>();
  const lookUp = (token: string): SubscriptionGrant => {
    const grant = grants.get(token);
    if (!grant) throw new AuthenticationError(`unknown test token ${token}`);
    return grant;
  };
  const authenticator: Authenticator = { verify: () => Promise.reject(new Error("not used")), verifySubscriptionNow: lookUp, verifySubscription: async (token) => lookUp(token) };
  const namespaces = new NamespaceRegistry([...BUILT_IN_NAMESPACES, VIP, TYPING]);
  const { gateway, connect } = coreGateway(clock, broker, { authenticator, bindLingerMs: 0, namespaces });
  await gateway.start();
  await broker.start(gateway);
  const grant = (token: string, channel: string, userId = "alice") => grants.set(token, { userId, channel, expiresAtMs: clock.now() + 60_000 });
  return { connect, grant, toBackends };
}

describe("subscribe, by the namespace's rule", () => {
  it("self: a user subscribes to their own user channel only", async () => {
    const { connect } = await setup();
    const alice = connect("alice");
    expect(await request(alice, { op: "subscribe", channel: "user:alice" })).toMatchObject({ op: "ok" });
    expect(await request(alice, { op: "subscribe", channel: "user:bob" })).toMatchObject({ op: "error", code: "forbidden" });
    expect(alice.socket.topics).toEqual(new Set(["user:alice"]));
  });

  it("claim: room channels by the channels claim, exact or namespace wildcard, none without it", async () => {
    const { connect } = await setup();
    const exact = connect("a", { channelPatterns: ["room:7"] });
    expect(await request(exact, { op: "subscribe", channel: "room:7" })).toMatchObject({ op: "ok" });
    expect(await request(exact, { op: "subscribe", channel: "room:8" })).toMatchObject({ op: "error", code: "forbidden" });
    const wildcard = connect("b", { channelPatterns: ["room:*"] });
    expect(await request(wildcard, { op: "subscribe", channel: "room:8" })).toMatchObject({ op: "ok" });
    // A wildcard covers its own namespace only, and `*` alone is no pattern.
    const elsewhere = connect("c", { channelPatterns: ["post:*", "*"] });
    expect(await request(elsewhere, { op: "subscribe", channel: "room:7" })).toMatchObject({ op: "error", code: "forbidden" });
    const none = connect("d");
    expect(await request(none, { op: "subscribe", channel: "room:7" })).toMatchObject({ op: "error", code: "forbidden" });
  });

  it("any: every authenticated user subscribes to post and status channels", async () => {
    const { connect } = await setup();
    const client = connect("alice");
    expect(await request(client, { op: "subscribe", channel: "post:1" })).toMatchObject({ op: "ok" });
    expect(await request(client, { op: "subscribe", channel: "status:someone" })).toMatchObject({ op: "ok" });
  });

  it("token: only with a subscription token of this user for this channel, and the channels claim grants nothing", async () => {
    const { connect, grant } = await setup();
    grant("mine", "vip:1");
    grant("other-channel", "vip:2");
    grant("bobs", "vip:1", "bob");
    const alice = connect("alice", { channelPatterns: ["vip:*"] });
    expect(await request(alice, { op: "subscribe", channel: "vip:1" })).toMatchObject({ op: "error", code: "forbidden" });
    expect(await request(alice, { op: "subscribe", channel: "vip:1", token: "other-channel" })).toMatchObject({ op: "error", code: "forbidden" });
    expect(await request(alice, { op: "subscribe", channel: "vip:1", token: "bobs" })).toMatchObject({ op: "error", code: "forbidden" });
    expect(await request(alice, { op: "subscribe", channel: "vip:1", token: "forged" })).toMatchObject({ op: "error", code: "unauthorized" });
    expect(alice.socket.topics).toEqual(new Set());
    expect(await request(alice, { op: "subscribe", channel: "vip:1", token: "mine" })).toMatchObject({ op: "ok" });
    expect(alice.socket.topics).toEqual(new Set(["vip:1"]));
  });

  it("refuses a subscription token in a namespace that takes none", async () => {
    const { connect, grant } = await setup();
    grant("t", "post:1");
    expect(await request(connect("alice"), { op: "subscribe", channel: "post:1", token: "t" })).toMatchObject({ op: "error", code: "bad_request" });
  });

  it("answers bad_request for names that would become AMQP wildcards, and not_found for an unknown namespace", async () => {
    const { connect } = await setup();
    const client = connect("alice", { channelPatterns: ["room:*"] });
    for (const channel of ["room:7.8", "room:*", "room:#", "room:", ":7", "room", "room:a b", "ro.om:7"]) {
      expect(await request(client, { op: "subscribe", channel })).toMatchObject({ op: "error", code: "bad_request" });
    }
    expect(await request(client, { op: "subscribe", channel: "nope:1" })).toMatchObject({ op: "error", code: "not_found" });
    expect(client.socket.topics).toEqual(new Set());
  });

  it("lists presence only where the caller may subscribe", async () => {
    const { connect } = await setup();
    const client = connect("alice", { channelPatterns: ["room:7"] });
    expect(await request(client, { op: "presence", channel: "room:7" })).toMatchObject({ op: "ok" });
    expect(await request(client, { op: "presence", channel: "room:8" })).toMatchObject({ op: "error", code: "forbidden" });
    expect(await request(client, { op: "presence", channel: "nope:1" })).toMatchObject({ op: "error", code: "not_found" });
  });
});

describe("publish", () => {
  it("refuses where the namespace takes no publishes or the user may not subscribe, and bad types or missing data", async () => {
    const { connect, toBackends } = await setup();
    const client = connect("alice", { channelPatterns: ["room:1"] });
    expect(await request(client, { op: "publish", channel: "post:1", type: "t", data: {} })).toMatchObject({ op: "error", code: "forbidden" });
    expect(await request(client, { op: "publish", channel: "room:2", type: "t", data: {} })).toMatchObject({ op: "error", code: "forbidden" });
    expect(await request(client, { op: "publish", channel: "nope:1", type: "t", data: {} })).toMatchObject({ op: "error", code: "not_found" });
    expect(await request(client, { op: "publish", channel: "room:1", type: "a.*", data: {} })).toMatchObject({ op: "error", code: "bad_request" });
    expect(await request(client, { op: "publish", channel: "room:1", type: "t" })).toMatchObject({ op: "error", code: "bad_request" });
    expect(toBackends).toEqual([]);
  });

  it("sends a backend namespace's publish to the backends as client.<ns>.<id>.<type>, with the sender set by the gateway", async () => {
    const { connect, toBackends } = await setup();
    const client = connect("alice", { channelPatterns: ["room:1"] });
    const reply = await request(client, { op: "publish", channel: "room:1", type: "chat.message", data: { text: "hi" } });
    expect(reply).toMatchObject({ op: "ok", id: expect.any(String) });
    expect(toBackends.map((message) => message.routingKey)).toEqual(["client.room.1.chat.message"]);
    expect(JSON.parse(new TextDecoder().decode(toBackends[0]!.body))).toMatchObject({ id: reply.id, type: "chat.message", data: { text: "hi" }, user: "alice" });
  });

  it("broadcasts a broadcast namespace's publish straight to the channel's subscribers", async () => {
    const { connect, toBackends } = await setup();
    const listener = connect("bob");
    expect(await request(listener, { op: "subscribe", channel: "typing:1" })).toMatchObject({ op: "ok" });
    const reply = await request(connect("alice"), { op: "publish", channel: "typing:1", type: "typing.started", data: {} });
    expect(reply).toMatchObject({ op: "ok" });
    await new Promise((resolve) => setImmediate(resolve));
    expect(listener.socket.sent.filter((frame) => frame.op === "event")).toEqual([expect.objectContaining({ channel: "typing:1", id: reply.id, type: "typing.started" })]);
    expect(toBackends).toEqual([]);
  });
});
