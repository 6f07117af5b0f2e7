import { SignJWT } from "jose";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type RealtimeEvent } from "@sobranie/client";
import { createPublisher, PublishUnroutableError, PublishValidationError } from "@sobranie/publisher";
import { PgAdmin, TEST_DATABASE_URL, uniqueName, withDatabase } from "../support/pg-admin.js";
import { createRabbitVhost, type RabbitVhost } from "../support/rabbit-vhost.js";
import { SseTestClient } from "../support/sse-client.js";
import { signToken, startTestGateway, TEST_JWT_SECRET, type TestGateway, uniqueId } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { TestClient, UpgradeRefused, type Frame } from "../support/ws-client.js";

/**
 * Control commands across nodes (docs/protocol.md §11): two gateways on a
 * private RabbitMQ vhost and a PostgreSQL database of their own, a third
 * started after a revocation. Commands go in through one node's HTTP API and
 * must reach the clients of both.
 *
 * `chat` is a live namespace (no worker needed): `chat:<id>` events reach
 * subscribers straight through sobranie.live.
 */

const API_KEY = "control-test-api-key-0123456789";
const NAMESPACES = JSON.stringify([{ name: "chat", subscribe: "claim", publish: "backend", durable: false, presence: false }]);

let vhost: RabbitVhost;
let admin: PgAdmin;
let database: string;
let env: Record<string, string>;
let a: TestGateway;
let b: TestGateway;
const started: TestGateway[] = [];

beforeAll(async () => {
  vhost = await createRabbitVhost("control");
  admin = await PgAdmin.connect();
  database = uniqueName("t_control");
  await admin.query(`create database "${database}"`);
  env = { RABBITMQ_URL: vhost.url, DATABASE_URL: withDatabase(TEST_DATABASE_URL, database), API_KEYS: API_KEY, NAMESPACES };
  a = await startTestGateway(env);
  started.push(a);
  b = await startTestGateway(env);
  started.push(b);
}, 60_000);

afterAll(async () => {
  await Promise.all(started.map((gateway) => gateway.stop()));
  await vhost?.drop();
  await admin?.query(`drop database if exists "${database}" with (force)`);
  await admin?.close();
});

async function post(path: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const response = await fetch(`${a.httpUrl}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

async function publish(channel: string, id: string): Promise<void> {
  expect((await post("/api/v1/publish", { channel, type: "message.created", data: {}, id })).status).toBe(202);
}

async function control(command: Record<string, unknown>): Promise<void> {
  const reply = await post("/api/v1/control", command);
  expect(reply).toEqual({ status: 202, json: { command: command.command } });
}

async function subscribed(client: TestClient, channel: string): Promise<void> {
  expect(await client.request({ op: "subscribe", channel })).toMatchObject({ op: "ok" });
}

/** An HS256 token with exactly these claims (signToken sets iat to now and has no jti). */
function signClaims(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(TEST_JWT_SECRET));
}

const eventIds = (client: TestClient, channel: string): unknown[] => client.frames.filter((frame) => frame.op === "event" && frame.channel === channel).map((frame) => frame.id);
const isUnsubscribed = (channel: string) => (frame: Frame) => frame.op === "unsubscribed" && frame.channel === channel;

describe("control commands on two nodes", () => {
  it("the HTTP control API refuses a bad command with 400 and a reason, and a missing API key with 401", async () => {
    expect(await post("/api/v1/control", { command: "revoke", user: "u1" })).toEqual({
      status: 400,
      json: { error: { code: "bad_request", message: "revoke needs exactly one of tokenId and issuedBefore" } },
    });
    expect(await post("/api/v1/control", { command: "disconnect", user: "u1", mode: "later" })).toMatchObject({ status: 400 });
    const anonymous = await fetch(`${a.httpUrl}/api/v1/control`, { method: "POST", body: "{}" });
    expect(anonymous.status).toBe(401);
  });

  it("a removed member stops receiving the room on both nodes, WebSocket and SSE, without reconnecting (how fast: bench:control)", async () => {
    const user = uniqueId("alice");
    const token = await signToken({ sub: user, channels: ["chat:*"] });
    const [onA, onB] = await Promise.all([TestClient.connect(a.wsUrl, { token }), TestClient.connect(b.wsUrl, { token })]);
    for (const client of [onA, onB]) for (const channel of ["chat:r1", "chat:r2"]) await subscribed(client, channel);
    const sse = await SseTestClient.open(`${b.httpUrl}/realtime/events?channels=chat:r1,chat:r2&token=${encodeURIComponent(token)}`);
    await sse.next((message) => message.data.op === "ok" && message.data.ref === 2);

    await publish("chat:r1", "before");
    for (const client of [onA, onB]) await client.next((frame) => frame.id === "before");
    await sse.next((message) => message.data.id === "before");

    await control({ command: "unsubscribe", user, channel: "chat:r1" });
    const frames = await Promise.all([onA.next(isUnsubscribed("chat:r1")), onB.next(isUnsubscribed("chat:r1"))]);
    const streamed = await sse.next((message) => message.event === "sobranie.unsubscribed");
    expect(frames).toEqual([
      { op: "unsubscribed", channel: "chat:r1", reason: "revoked" },
      { op: "unsubscribed", channel: "chat:r1", reason: "revoked" },
    ]);
    expect(streamed.data).toEqual({ op: "unsubscribed", channel: "chat:r1", reason: "revoked" });

    // After the frame nothing of chat:r1 arrives; chat:r2, published after it, shows delivery went on.
    await publish("chat:r1", "after");
    await publish("chat:r2", "marker");
    for (const client of [onA, onB]) await client.next((frame) => frame.id === "marker");
    await sse.next((message) => message.data.id === "marker");
    for (const client of [onA, onB]) expect(eventIds(client, "chat:r1")).toEqual(["before"]);
    expect(sse.events("chat:r1").map((message) => message.data.id)).toEqual(["before"]);
    // The same token may not subscribe again, on either node; nobody was disconnected.
    for (const client of [onA, onB]) expect(await client.request({ op: "subscribe", channel: "chat:r1" })).toMatchObject({ op: "error", code: "forbidden" });
    expect([onA.socket.readyState, onB.socket.readyState, sse.ended]).toEqual([WebSocket.OPEN, WebSocket.OPEN, false]);
    for (const client of [onA, onB]) client.socket.close();
    sse.request.destroy();
  });

  it("a banned user is cut off on both nodes with 4003, and with a revoke their token is refused on reconnect", async () => {
    const user = uniqueId("banned");
    const token = await signToken({ sub: user, channels: ["chat:*"] });
    const [onA, onB] = await Promise.all([TestClient.connect(a.wsUrl, { token }), TestClient.connect(b.wsUrl, { token })]);
    const bystander = await TestClient.connect(b.wsUrl, { token: await signToken({ sub: uniqueId("other") }) });
    // Disconnect first (4003: the SDK stops), then revoke: commands from one publisher arrive in order on every node.
    await control({ command: "disconnect", user, mode: "final", reason: "banned" });
    await control({ command: "revoke", user, issuedBefore: Date.now() + 1_000 });
    expect(await Promise.all([onA.closed, onB.closed])).toEqual([
      { code: 4003, reason: "banned" },
      { code: 4003, reason: "banned" },
    ]);
    for (const gateway of [a, b]) {
      const refused = await TestClient.connect(gateway.wsUrl, { token }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(UpgradeRefused);
      expect((refused as UpgradeRefused).status).toBe(401);
    }
    expect(bystander.socket.readyState).toBe(WebSocket.OPEN);
    bystander.socket.close();
  });

  it("a revoked jti is refused on connect and on refresh by a node started after the revocation", async () => {
    const user = uniqueId("jti");
    const nowSec = Math.floor(Date.now() / 1_000);
    const revoked = await signClaims({ sub: user, jti: "jti-revoked", iat: nowSec, exp: nowSec + 600 });
    const kept = await signClaims({ sub: user, jti: "jti-kept", iat: nowSec, exp: nowSec + 600 });
    const live = await TestClient.connect(b.wsUrl, { token: revoked });
    await control({ command: "revoke", user, tokenId: "jti-revoked", expiresAt: (nowSec + 600) * 1_000 });
    expect((await live.closed).code).toBe(4001);

    const later = await startTestGateway(env);
    started.push(later);
    const refused = await TestClient.connect(later.wsUrl, { token: revoked }).catch((error: unknown) => error);
    expect((refused as UpgradeRefused).status).toBe(401);
    expect((refused as UpgradeRefused).body).toContain("token revoked");
    const sse = await SseTestClient.open(`${later.httpUrl}/realtime/events?channels=user:${user}&token=${encodeURIComponent(revoked)}`).catch((error: unknown) => error);
    expect((sse as { status: number }).status).toBe(401);
    const client = await TestClient.connect(later.wsUrl, { token: kept });
    expect(await client.request({ op: "refresh", token: revoked })).toMatchObject({ op: "error", code: "unauthorized", message: "token revoked" });
    expect(await client.request({ op: "refresh", token: kept })).toMatchObject({ op: "ok" });
    client.socket.close();
  });

  it("a refresh whose token drops a room ends that subscription with `unsubscribed forbidden`", async () => {
    const user = uniqueId("refresh");
    const client = await TestClient.connect(a.wsUrl, { token: await signToken({ sub: user, channels: ["chat:r7", "chat:r8"] }) });
    await subscribed(client, "chat:r7");
    await subscribed(client, "chat:r8");
    expect(await client.request({ op: "refresh", token: await signToken({ sub: user, channels: ["chat:r8"] }) })).toMatchObject({ op: "ok" });
    expect(client.frames.find(isUnsubscribed("chat:r7"))).toEqual({ op: "unsubscribed", channel: "chat:r7", reason: "forbidden" });
    await publish("chat:r7", "dropped");
    await publish("chat:r8", "kept");
    await client.next((frame) => frame.id === "kept");
    expect(eventIds(client, "chat:r7")).toEqual([]);
    client.socket.close();
  });

  it("the client SDK forgets a subscription ended by the server and does not resubscribe after a reconnect", async () => {
    const user = uniqueId("sdk");
    const sdk = connect({
      url: b.httpUrl,
      // A fresh token on each connect, dated after the removal: the server would let it resubscribe, so only the SDK keeps it from doing so.
      token: () => signClaims({ sub: user, channels: ["chat:*"], iat: Math.floor(Date.now() / 1_000) + 5, exp: Math.floor(Date.now() / 1_000) + 600 }),
      WebSocket: WebSocket as never,
      transport: "websocket",
      reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
    });
    const received: RealtimeEvent[] = [];
    const ended: unknown[] = [];
    const welcomes: string[] = [];
    sdk.on("unsubscribed", (event) => ended.push(event));
    sdk.on("state", ({ state }) => welcomes.push(state));
    await sdk.subscribe("chat:s1", (event) => received.push(event));
    await sdk.subscribe("chat:s2", (event) => received.push(event));
    await control({ command: "unsubscribe", user, channel: "chat:s1" });
    await waitFor(() => ended.length === 1, 5_000, "the unsubscribed event");
    expect(ended).toEqual([{ channel: "chat:s1", reason: "revoked" }]);

    await control({ command: "disconnect", user, mode: "reauthenticate" });
    await waitFor(() => welcomes.filter((state) => state === "connected").length >= 2, 5_000, "the reconnect");
    // Delivery on chat:s2 after the reconnect proves its resubscribe was made; chat:s1, published first, never comes.
    await publish("chat:s1", "sdk-after");
    await waitFor(async () => {
      await publish("chat:s2", uniqueId("sdk-marker"));
      return received.some((event) => event.channel === "chat:s2");
    }, 5_000, "an event on chat:s2");
    expect(received.filter((event) => event.channel === "chat:s1")).toEqual([]);
    sdk.close();
  });

  it("the publisher SDK's control methods reach both nodes with confirms, and refuse bad arguments before any I/O", async () => {
    const publisher = createPublisher({ url: vhost.url });
    try {
      const user = uniqueId("sdk-ban");
      const token = await signToken({ sub: user, channels: ["chat:*"] });
      const [onA, onB] = await Promise.all([TestClient.connect(a.wsUrl, { token }), TestClient.connect(b.wsUrl, { token })]);
      for (const client of [onA, onB]) await subscribed(client, "chat:p1");
      await publisher.unsubscribeUser(user, "chat:p1");
      for (const client of [onA, onB]) expect(await client.next(isUnsubscribed("chat:p1"))).toMatchObject({ reason: "revoked" });
      await publisher.disconnectUser(user, { reason: "banned" });
      await publisher.revokeTokensIssuedBefore(user, new Date(Date.now() + 1_000));
      expect(await Promise.all([onA.closed, onB.closed])).toEqual([
        { code: 4003, reason: "banned" },
        { code: 4003, reason: "banned" },
      ]);
      await waitFor(async () => (await TestClient.connect(b.wsUrl, { token }).catch((error: unknown) => error)) instanceof UpgradeRefused, 5_000, "the revoked token refused");

      const bad = await publisher.revokeToken(user, "").catch((error: unknown) => error);
      expect(bad).toBeInstanceOf(PublishValidationError);
      expect(bad).toMatchObject({ code: "invalid_control", message: "tokenId must not be empty" });
      await expect(publisher.unsubscribeUser(user, "chat:*")).rejects.toMatchObject({ code: "invalid_control" });
    } finally {
      await publisher.close();
    }
  });

  it("the publisher SDK rejects a control command no gateway took (PublishUnroutableError)", async () => {
    const empty = await createRabbitVhost("control-empty");
    const publisher = createPublisher({ url: empty.url });
    try {
      await expect(publisher.disconnectUser("nobody-anywhere")).rejects.toBeInstanceOf(PublishUnroutableError);
    } finally {
      await publisher.close();
      await empty.drop();
    }
  });
});
