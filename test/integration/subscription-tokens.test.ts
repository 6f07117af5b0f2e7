import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type ConnectOptions } from "@sobranie/client";
import { SseTestClient, type SseRefused } from "../support/sse-client.js";
import { signSubscriptionToken, signToken, startTestGateway, uniqueId, type TestGateway } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { TestClient, UpgradeRefused, type Frame } from "../support/ws-client.js";

/**
 * Subscription tokens (docs/protocol.md §10) on one gateway against
 * the real RabbitMQ. `vip` is a live namespace whose subscribe is `token`:
 * only a subscription token for the channel admits it, never the connection
 * token's `channels` claim.
 */

const API_KEY = "subscription-token-test-key-0123456789";
const NAMESPACES = JSON.stringify([{ name: "vip", subscribe: "token", publish: "backend", durable: false, presence: true }]);

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway({ NAMESPACES, API_KEYS: API_KEY, RATE_CONNECTION_BURST: "1000", RATE_USER_BURST: "1000" });
});

afterAll(async () => {
  await gateway?.stop();
});

async function post(path: string, body: unknown): Promise<number> {
  const response = await fetch(`${gateway.httpUrl}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response.status;
}

async function publish(channel: string, id: string): Promise<void> {
  expect(await post("/api/v1/publish", { channel, type: "note.created", data: {}, id })).toBe(202);
}

async function control(command: Record<string, unknown>): Promise<void> {
  expect(await post("/api/v1/control", command)).toBe(202);
}

/** A user connected with a connection token that claims every vip channel (which must not count). */
async function connectUser(user: string): Promise<TestClient> {
  return TestClient.connect(gateway.wsUrl, { token: await signToken({ sub: user, channels: ["vip:*"] }) });
}

const isUnsubscribed = (channel: string) => (frame: Frame) => frame.op === "unsubscribed" && frame.channel === channel;
const eventIds = (client: TestClient, channel: string) => client.frames.filter((frame) => frame.op === "event" && frame.channel === channel).map((frame) => frame.id);

describe("subscribe in a namespace that requires subscription tokens", () => {
  it("admits a subscribe with a valid token, and events of the channel arrive", async () => {
    const user = uniqueId("ok");
    const channel = `vip:${uniqueId("c")}`;
    const client = await connectUser(user);
    expect(await client.request({ op: "subscribe", channel, token: await signSubscriptionToken({ sub: user, channel }) })).toMatchObject({ op: "ok", recovered: false });
    await publish(channel, "first");
    expect(await client.next((frame) => frame.op === "event" && frame.id === "first")).toMatchObject({ channel });
    client.close();
  });

  it("refuses, echoing the ref, a missing, forged, expired, wrong-channel, wrong-user or connection token", async () => {
    const user = uniqueId("refused");
    const channel = `vip:${uniqueId("c")}`;
    const client = await connectUser(user);
    const cases: Array<[string | undefined, string, string]> = [
      [undefined, "forbidden", "namespace vip requires a subscription token"],
      ["not-a-jwt", "unauthorized", "token is malformed"],
      [await signSubscriptionToken({ sub: user, channel, secret: "another-secret-that-is-long-enough-xx" }), "unauthorized", "token signature is invalid"],
      [await signSubscriptionToken({ sub: user, channel, expiresInSec: -60 }), "unauthorized", "token expired"],
      [await signSubscriptionToken({ sub: user, channel: "vip:other" }), "forbidden", `the subscription token is not for ${channel}`],
      [await signSubscriptionToken({ sub: "someone-else", channel }), "forbidden", "the subscription token is for another user"],
      [await signToken({ sub: user, channels: [channel] }), "unauthorized", 'token has no "channel" claim: a connection token is not a subscription token'],
    ];
    for (const [index, [token, code, message]] of cases.entries()) {
      const ref = 100 + index;
      client.send(token === undefined ? { op: "subscribe", ref, channel } : { op: "subscribe", ref, channel, token });
      const reply = await client.next((frame) => frame.ref === ref);
      expect(reply, message).toMatchObject({ op: "error", ref, code });
      expect(String(reply.message), message).toContain(message);
    }
    // Nothing was subscribed: an event of the channel does not arrive (an event of another channel, published after it, does).
    const control = `vip:${uniqueId("control")}`;
    expect(await client.request({ op: "subscribe", channel: control, token: await signSubscriptionToken({ sub: user, channel: control }) })).toMatchObject({ op: "ok" });
    await publish(channel, "not-for-you");
    await publish(control, "marker");
    await client.next((frame) => frame.id === "marker");
    expect(eventIds(client, channel)).toEqual([]);
    client.close();
  });

  it("refuses a token in subscribe to a namespace that takes none", async () => {
    const user = uniqueId("extra");
    const client = await connectUser(user);
    const reply = await client.request({ op: "subscribe", channel: "post:1", token: await signSubscriptionToken({ sub: user, channel: "post:1" }) });
    expect(reply).toMatchObject({ op: "error", code: "bad_request", message: "namespace post takes no subscription token" });
    client.close();
  });
});

describe("publish and presence in a token namespace", () => {
  it("are allowed on a channel the connection holds with a subscription token, and forbidden before", async () => {
    const user = uniqueId("pub");
    const channel = `vip:${uniqueId("c")}`;
    const client = await connectUser(user);
    expect(await client.request({ op: "publish", channel, type: "note.typed", data: {} })).toMatchObject({ op: "error", code: "forbidden" });
    expect(await client.request({ op: "presence", channel })).toMatchObject({ op: "error", code: "forbidden" });
    expect(await client.request({ op: "subscribe", channel, presence: true, token: await signSubscriptionToken({ sub: user, channel }) })).toMatchObject({ op: "ok" });
    expect(await client.request({ op: "publish", channel, type: "note.typed", data: {} })).toMatchObject({ op: "ok", id: expect.any(String) });
    expect(await client.request({ op: "presence", channel })).toMatchObject({ op: "ok", count: 1, members: [{ user }] });
    client.close();
  });
});

describe("the two kinds of token cannot stand in for each other", () => {
  it("refuses a subscription token as the connection token on the upgrade, SSE, HTTP and connection refresh", async () => {
    const user = uniqueId("kinds");
    const subscriptionToken = await signSubscriptionToken({ sub: user, channel: "vip:1" });
    const expected = 'token has a "channel" claim: a subscription token is not a connection token';

    const upgrade = await TestClient.connect(gateway.wsUrl, { token: subscriptionToken }).catch((error: unknown) => error);
    expect(upgrade).toBeInstanceOf(UpgradeRefused);
    expect((upgrade as UpgradeRefused).status).toBe(401);
    expect(JSON.parse((upgrade as UpgradeRefused).body)).toEqual({ error: { code: "unauthorized", message: expected } });

    const sse = await SseTestClient.open(`${gateway.httpUrl}/realtime/events?channels=post:1&token=${encodeURIComponent(subscriptionToken)}`).catch((error: unknown) => error);
    expect((sse as SseRefused).status).toBe(401);
    expect(JSON.parse((sse as SseRefused).body)).toEqual({ error: { code: "unauthorized", message: expected } });

    const status = await fetch(`${gateway.httpUrl}/api/v1/status?users=${user}`, { headers: { authorization: `Bearer ${subscriptionToken}` } });
    expect(status.status).toBe(401);
    expect(await status.json()).toEqual({ error: { code: "unauthorized", message: expected } });

    const client = await connectUser(user);
    expect(await client.request({ op: "refresh", token: subscriptionToken })).toMatchObject({ op: "error", code: "unauthorized", message: expected });
    client.close();
  });
});

describe("refresh and expiry of a subscription token", () => {
  it("a refresh (or a repeated subscribe) extends the subscription past the first token's exp; without one it ends with `unsubscribed expired` and its events stop", async () => {
    const user = uniqueId("refresh");
    const [kept, renewed, expiring] = [`vip:${uniqueId("kept")}`, `vip:${uniqueId("renewed")}`, `vip:${uniqueId("expiring")}`];
    const client = await connectUser(user);
    for (const channel of [kept, renewed, expiring]) {
      expect(await client.request({ op: "subscribe", channel, token: await signSubscriptionToken({ sub: user, channel, expiresInSec: 2 }) })).toMatchObject({ op: "ok" });
    }
    expect(await client.request({ op: "refresh", channel: kept, token: await signSubscriptionToken({ sub: user, channel: kept, expiresInSec: 600 }) })).toMatchObject({ op: "ok" });
    expect(await client.request({ op: "subscribe", channel: renewed, token: await signSubscriptionToken({ sub: user, channel: renewed, expiresInSec: 600 }) })).toMatchObject({ op: "ok" });

    expect(await client.next(isUnsubscribed(expiring), 10_000)).toEqual({ op: "unsubscribed", channel: expiring, reason: "expired" });
    await publish(expiring, "after-expiry");
    await publish(kept, "kept");
    await publish(renewed, "renewed");
    await client.next((frame) => frame.id === "kept");
    await client.next((frame) => frame.id === "renewed");
    expect(eventIds(client, expiring)).toEqual([]);
    expect(client.frames.some((frame) => isUnsubscribed(kept)(frame) || isUnsubscribed(renewed)(frame))).toBe(false);
    client.close();
  });

  it("refuses a refresh with a bad token, for another channel, or for a channel not subscribed with a token, echoing the ref", async () => {
    const user = uniqueId("badrefresh");
    const channel = `vip:${uniqueId("c")}`;
    const client = await connectUser(user);
    expect(await client.request({ op: "subscribe", channel, token: await signSubscriptionToken({ sub: user, channel }) })).toMatchObject({ op: "ok" });
    expect(await client.request({ op: "subscribe", channel: "post:1" })).toMatchObject({ op: "ok" });
    expect(await client.request({ op: "refresh", channel, token: await signSubscriptionToken({ sub: user, channel, expiresInSec: -60 }) })).toMatchObject({ op: "error", code: "unauthorized", message: "token expired" });
    expect(await client.request({ op: "refresh", channel, token: await signSubscriptionToken({ sub: user, channel: "vip:else" }) })).toMatchObject({ op: "error", code: "forbidden" });
    expect(await client.request({ op: "refresh", channel: "post:1", token: await signSubscriptionToken({ sub: user, channel: "post:1" }) })).toMatchObject({
      op: "error",
      code: "bad_request",
      message: "not subscribed to post:1 with a subscription token",
    });
    // A refused refresh leaves the subscription on its current token.
    await publish(channel, "still-here");
    await client.next((frame) => frame.id === "still-here");
    client.close();
  });

  it("a connection refresh leaves token-granted subscriptions alone (the connection token's claim never granted them)", async () => {
    const user = uniqueId("connrefresh");
    const channel = `vip:${uniqueId("c")}`;
    const client = await connectUser(user);
    expect(await client.request({ op: "subscribe", channel, token: await signSubscriptionToken({ sub: user, channel }) })).toMatchObject({ op: "ok" });
    // The new connection token claims nothing: a claim-granted subscription would end with `forbidden` here.
    expect(await client.request({ op: "refresh", token: await signToken({ sub: user }) })).toMatchObject({ op: "ok" });
    await publish(channel, "after-refresh");
    await client.next((frame) => frame.id === "after-refresh");
    expect(client.frames.some(isUnsubscribed(channel))).toBe(false);
    client.close();
  });
});

describe("revocation and the control channel end token-granted subscriptions", () => {
  it("a revoked jti ends the subscription (`unsubscribed revoked`), keeps the connection, and the token is refused again", async () => {
    const user = uniqueId("jti");
    const [revoked, other] = [`vip:${uniqueId("revoked")}`, `vip:${uniqueId("other")}`];
    const client = await connectUser(user);
    const revokedToken = await signSubscriptionToken({ sub: user, channel: revoked, jti: uniqueId("jti") });
    expect(await client.request({ op: "subscribe", channel: revoked, token: revokedToken })).toMatchObject({ op: "ok" });
    expect(await client.request({ op: "subscribe", channel: other, token: await signSubscriptionToken({ sub: user, channel: other, jti: uniqueId("jti") }) })).toMatchObject({ op: "ok" });
    const jti = JSON.parse(Buffer.from(revokedToken.split(".")[1] ?? "", "base64url").toString()).jti as string;
    await control({ command: "revoke", user, tokenId: jti });
    expect(await client.next(isUnsubscribed(revoked))).toEqual({ op: "unsubscribed", channel: revoked, reason: "revoked" });
    expect(await client.request({ op: "subscribe", channel: revoked, token: revokedToken })).toMatchObject({ op: "error", code: "unauthorized", message: "token revoked" });
    await publish(other, "other-kept");
    await client.next((frame) => frame.id === "other-kept");
    client.close();
  });

  it("a revoke by time ends the subscriptions on subscription tokens issued before it, and keeps the connection whose token is newer", async () => {
    const user = uniqueId("before");
    const [old, fresh] = [`vip:${uniqueId("old")}`, `vip:${uniqueId("fresh")}`];
    const nowSec = Math.floor(Date.now() / 1_000);
    const client = await connectUser(user); // its token's iat is now: after the cut-off
    expect(await client.request({ op: "subscribe", channel: old, token: await signSubscriptionToken({ sub: user, channel: old, iat: nowSec - 60 }) })).toMatchObject({ op: "ok" });
    expect(await client.request({ op: "subscribe", channel: fresh, token: await signSubscriptionToken({ sub: user, channel: fresh, iat: nowSec }) })).toMatchObject({ op: "ok" });
    await control({ command: "revoke", user, issuedBefore: (nowSec - 30) * 1_000 });
    expect(await client.next(isUnsubscribed(old))).toEqual({ op: "unsubscribed", channel: old, reason: "revoked" });
    await publish(fresh, "fresh-kept");
    await client.next((frame) => frame.id === "fresh-kept");
    expect(client.frames.some(isUnsubscribed(fresh))).toBe(false);
    client.close();
  });

  it("a control unsubscribe ends it, and only a subscription token issued after the removal admits the channel again", async () => {
    const user = uniqueId("unsub");
    const channel = `vip:${uniqueId("c")}`;
    const client = await connectUser(user);
    const nowSec = Math.floor(Date.now() / 1_000);
    const before = await signSubscriptionToken({ sub: user, channel, iat: nowSec - 5 });
    expect(await client.request({ op: "subscribe", channel, token: before })).toMatchObject({ op: "ok" });
    await control({ command: "unsubscribe", user, channel });
    expect(await client.next(isUnsubscribed(channel))).toEqual({ op: "unsubscribed", channel, reason: "revoked" });
    expect(await client.request({ op: "subscribe", channel, token: before })).toMatchObject({ op: "error", code: "forbidden" });
    expect(await client.request({ op: "subscribe", channel, token: await signSubscriptionToken({ sub: user, channel, iat: nowSec + 5 }) })).toMatchObject({ op: "ok" });
    client.close();
  });
});

describe("SSE", () => {
  it("cannot carry subscription tokens: a channel of a token namespace is refused on the stream, the others are served", async () => {
    const user = uniqueId("sse");
    const channel = `vip:${uniqueId("c")}`;
    const token = await signToken({ sub: user, channels: ["vip:*"] });
    const stream = await SseTestClient.open(`${gateway.httpUrl}/realtime/events?channels=${channel},post:1&token=${encodeURIComponent(token)}`);
    const refused = await stream.next((message) => message.data.op === "error" && message.data.ref === 1);
    expect(refused.data).toMatchObject({ code: "forbidden", message: expect.stringContaining("namespace vip requires a subscription token") });
    expect((await stream.next((message) => message.data.ref === 2)).data).toMatchObject({ op: "ok" });
    stream.close();
  });
});

describe("the client SDK with getSubscriptionToken", () => {
  /** An SDK for `user` over WebSocket; subscription tokens live 3 s and are refreshed a second before exp. */
  function sdkFor(user: string, getSubscriptionToken: NonNullable<ConnectOptions["getSubscriptionToken"]>) {
    const sdk = connect({
      url: gateway.httpUrl,
      token: () => signToken({ sub: user }),
      transport: "websocket",
      WebSocket: WebSocket as never,
      reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
      refreshBeforeExpMs: 1_000,
      getSubscriptionToken,
    });
    const ended: unknown[] = [];
    const connected: string[] = [];
    sdk.on("unsubscribed", (event) => ended.push(event));
    sdk.on("state", ({ state }) => state === "connected" && connected.push(state));
    return { sdk, ended, connected };
  }

  it("asks for the token, refreshes it before its exp so the subscription outlives it, and resubscribes with a fresh one after a reconnect", async () => {
    const user = uniqueId("sdk");
    const channel = `vip:${uniqueId("c")}`;
    const asked: string[] = [];
    const firstExpiries: number[] = [];
    const { sdk, ended, connected } = sdkFor(user, async (name) => {
      asked.push(name);
      if (!name.startsWith("vip:")) return null;
      firstExpiries.push((Math.floor(Date.now() / 1_000) + 3) * 1_000);
      return signSubscriptionToken({ sub: user, channel: name, expiresInSec: 3 });
    });
    const received: string[] = [];
    await sdk.subscribe(channel, (event) => received.push(event.id));
    await sdk.subscribe("post:sdk", () => {});
    expect(asked).toEqual([channel, "post:sdk"]);

    await waitFor(() => asked.filter((name) => name === channel).length >= 2, 10_000, "the refresh of the subscription token");
    // The subscription outlives its first token: wait until that token is past its exp, then an event still arrives.
    const firstExpMs = firstExpiries[0] ?? 0;
    await waitFor(() => Date.now() > firstExpMs + 500, 10_000, "the first token's exp to pass");
    await publish(channel, "after-first-exp");
    await waitFor(() => received.includes("after-first-exp"), 5_000, "the event after the first token's exp");
    expect(ended).toEqual([]);

    const askedBefore = asked.length;
    await control({ command: "disconnect", user, mode: "reauthenticate" });
    await waitFor(() => connected.length >= 2, 5_000, "the reconnect");
    await sdk.subscribe(channel, () => {}); // resolves once the resubscribe is confirmed
    expect(asked.length).toBeGreaterThan(askedBefore);
    await publish(channel, "after-reconnect");
    await waitFor(() => received.includes("after-reconnect"), 5_000, "the event after the reconnect");
    expect(ended).toEqual([]);
    sdk.close();
  });

  it("emits unsubscribed expired when the refresh fails and the token runs out", async () => {
    const user = uniqueId("sdkfail");
    const channel = `vip:${uniqueId("c")}`;
    let calls = 0;
    const { sdk, ended } = sdkFor(user, async (name) => {
      calls += 1;
      if (calls > 1) throw new Error("token service down");
      return signSubscriptionToken({ sub: user, channel: name, expiresInSec: 2 });
    });
    const errors: string[] = [];
    sdk.on("error", (error) => errors.push(error.message));
    await sdk.subscribe(channel, () => {});
    await waitFor(() => ended.length === 1, 10_000, "the unsubscribed event");
    expect(ended).toEqual([{ channel, reason: "expired" }]);
    expect(errors).toContain(`subscription token refresh failed for ${channel}`);
    sdk.close();
  });
});
