import { createHash, createHmac } from "node:crypto";
import amqp from "amqplib";
import Pusher from "pusher";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DurableEnv } from "../support/durable-env.js";
import { suiteGateway } from "../support/suite-gateway.js";
import { RABBITMQ_URL, signToken, startTestGateway, uniqueId, type TestGateway } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { rawSubscribed } from "../support/pusher-clients.js";
import { TestClient, type Frame } from "../support/ws-client.js";

const APP = { id: "app-1", key: "app-key-1", secret: "app-secret-0123456789" };
const DISABLED = { id: "app-off", key: "app-key-off", secret: "off-secret-0123456789" };
/** A presence namespace without the worker in between (room is durable: its events reach subscribers only through a worker, which this suite does not run). */
const LOBBY = { name: "lobby", subscribe: "claim", publish: "none", durable: false, presence: true };

function sdk(gateway: TestGateway, app: { id: string; key: string; secret: string } = APP): Pusher {
  return new Pusher({ appId: app.id, key: app.key, secret: app.secret, host: "127.0.0.1", port: String(gateway.port), useTLS: false });
}

interface HandMade {
  method?: "GET" | "POST";
  path: string;
  params?: Record<string, string>;
  body?: string;
  key?: string;
  secret?: string;
  timestampSec?: number;
  /** Overrides the body_md5 that would be sent. */
  bodyMd5?: string;
  /** Overrides the signature that would be sent. */
  signature?: string;
}

/** A request signed by hand, as the Pusher REST API documents it (not through our code nor the SDK), so each part can be spoiled. */
function handMade(gateway: TestGateway, request: HandMade): Promise<Response> {
  const method = request.method ?? (request.body === undefined ? "GET" : "POST");
  const params: Record<string, string> = {
    auth_key: request.key ?? APP.key,
    auth_timestamp: String(request.timestampSec ?? Math.floor(Date.now() / 1000)),
    auth_version: "1.0",
    ...request.params,
  };
  if (request.body !== undefined) params.body_md5 = request.bodyMd5 ?? createHash("md5").update(request.body).digest("hex");
  const query = Object.keys(params)
    .sort()
    .map((key) => `${key}=${params[key]}`)
    .join("&");
  const signature = request.signature ?? createHmac("sha256", request.secret ?? APP.secret).update(`${method}\n${request.path}\n${query}`).digest("hex");
  const init: RequestInit = { method, ...(request.body === undefined ? {} : { body: request.body, headers: { "content-type": "application/json" } }) };
  return fetch(`${gateway.httpUrl}${request.path}?${query}&auth_signature=${signature}`, init);
}

async function refusal(response: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await response.json()) as { error: { code: string; message: string } };
  return { status: response.status, ...body.error };
}

/** A queue on `exchange` (default `sobranie.events`) for `pattern`, holding what is published there. */
async function eventsQueue(
  pattern: string,
  options: { url?: string; exchange?: string } = {},
): Promise<{ next(): Promise<amqp.ConsumeMessage>; close(): Promise<void> }> {
  const connection = await amqp.connect(options.url ?? RABBITMQ_URL);
  const channel = await connection.createChannel();
  const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
  await channel.bindQueue(queue, options.exchange ?? "sobranie.events", pattern);
  const received: amqp.ConsumeMessage[] = [];
  await channel.consume(queue, (message) => message && received.push(message), { noAck: true });
  return {
    next: async () => {
      await waitFor(() => received.length > 0, 10_000, `an event on ${pattern}`);
      return received.shift()!;
    },
    close: () => connection.close(),
  };
}

function eventFrame(client: TestClient, channel: string): Promise<Frame> {
  return client.next((frame) => frame.op === "event" && frame.channel === channel, 10_000);
}

describe("Pusher REST API with the real pusher server SDK", () => {
  const gateway = suiteGateway({
    PUSHER_APPS: JSON.stringify([APP, { ...DISABLED, enabled: false }]),
    NAMESPACES: JSON.stringify([LOBBY]),
    API_RATE_PER_SEC: "1000",
    API_RATE_BURST: "1000",
  });
  let subscriber: TestClient;
  beforeAll(async () => {
    subscriber = await TestClient.connect(gateway().wsUrl, { token: await signToken({ sub: "watcher", channels: ["room:*", "lobby:*"] }) });
  });
  afterAll(() => subscriber.close());

  it("trigger publishes one envelope per channel to sobranie.events, Laravel's class-name event type as it is, JSON data as an object", async () => {
    const [a, b] = [uniqueId("a"), uniqueId("b")];
    await subscriber.request({ op: "subscribe", channel: `post:${a}` });
    await subscriber.request({ op: "subscribe", channel: `post:${b}` });
    const queue = await eventsQueue(`post.${a}.#`);
    try {
      const response = await sdk(gateway()).trigger([`post.${a}`, `post.${b}`, `cache-post.${b}`], "App\\Events\\OrderShipped", { order: 7 });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({});
      expect(await eventFrame(subscriber, `post:${a}`)).toMatchObject({ type: "App\\Events\\OrderShipped", data: { order: 7 } });
      expect(await eventFrame(subscriber, `post:${b}`)).toMatchObject({ type: "App\\Events\\OrderShipped", data: { order: 7 } });
      const message = await queue.next();
      expect(message.fields.routingKey).toBe(`post.${a}.App\\Events\\OrderShipped`);
      expect(JSON.parse(message.content.toString())).toMatchObject({ type: "App\\Events\\OrderShipped", data: { order: 7 } });
      expect(message.properties.headers?.["x-sobranie-exclude-socket"]).toBeUndefined();
    } finally {
      await queue.close();
    }
    // `post.b` and `cache-post.b` are one channel: one event, not two.
    await subscriber.request({ op: "ping" });
    expect(subscriber.frames.filter((frame) => frame.op === "event" && frame.channel === `post:${b}`)).toHaveLength(1);
  });

  it("keeps a string that is not a JSON object or array a string, and puts socket_id in x-sobranie-exclude-socket", async () => {
    const id = uniqueId("s");
    await subscriber.request({ op: "subscribe", channel: `post:${id}` });
    const queue = await eventsQueue(`post.${id}.#`);
    try {
      await sdk(gateway()).trigger(`post.${id}`, "my-event", "plain text", { socket_id: "123.456" });
      expect(await eventFrame(subscriber, `post:${id}`)).toMatchObject({ type: "my-event", data: "plain text" });
      expect((await queue.next()).properties.headers?.["x-sobranie-exclude-socket"]).toBe("123.456");
      await sdk(gateway()).trigger(`post.${id}`, "my-event", "42");
      expect(await eventFrame(subscriber, `post:${id}`)).toMatchObject({ data: "42" });
    } finally {
      await queue.close();
    }
  });

  it("triggerBatch publishes each event to its channel, and info reports members and Pusher subscriptions", async () => {
    const [a, b] = [uniqueId("a"), uniqueId("b")];
    await subscriber.request({ op: "subscribe", channel: `post:${a}` });
    await subscriber.request({ op: "subscribe", channel: `lobby:${b}`, presence: true });
    // subscription_count counts Pusher connections' subscriptions; user_count every member (the native one too).
    const pusherSockets = [await rawSubscribed(gateway().port, `post.${a}`, { app: APP }), await rawSubscribed(gateway().port, `presence-lobby.${b}`, { app: APP, userId: "p1" })];
    try {
      await waitFor(() => pusherSockets.every((raw) => raw.frames.some((frame) => frame.event === "pusher_internal:subscription_succeeded")));
      const response = await sdk(gateway()).triggerBatch([
        { channel: `post.${a}`, name: "first", data: { n: 1 }, info: "subscription_count" },
        { channel: `presence-lobby.${b}`, name: "second", data: { n: 2 }, info: "user_count,subscription_count" },
      ]);
      expect(await response.json()).toEqual({ batch: [{ subscription_count: 1 }, { user_count: 2, subscription_count: 1 }] });
    } finally {
      for (const raw of pusherSockets) raw.socket.close();
    }
    expect(await eventFrame(subscriber, `post:${a}`)).toMatchObject({ type: "first", data: { n: 1 } });
    expect(await eventFrame(subscriber, `lobby:${b}`)).toMatchObject({ type: "second", data: { n: 2 } });
  });

  it("reports channels: occupied ones, presence user counts cluster-wide, and presence members", async () => {
    const [post, room] = [uniqueId("p"), uniqueId("r")];
    // A native subscription alone does not occupy a non-presence channel: Pusher subscriptions do.
    await subscriber.request({ op: "subscribe", channel: `post:${uniqueId("native")}` });
    const pusherSocket = await rawSubscribed(gateway().port, `post.${post}`, { app: APP });
    const member = await TestClient.connect(gateway().wsUrl, { token: await signToken({ sub: "ada", channels: [`room:${room}`], info: { name: "Ada" } }) });
    try {
      await member.request({ op: "subscribe", channel: `room:${room}`, presence: true });
      const pusher = sdk(gateway());
      const all = (await (await pusher.get({ path: "/channels" })).json()) as { channels: Record<string, unknown> };
      expect(all.channels[`post.${post}`]).toEqual({});
      expect(all.channels[`presence-room.${room}`]).toEqual({});
      const presence = (await (await pusher.get({ path: "/channels", params: { filter_by_prefix: "presence-", info: "user_count" } })).json()) as {
        channels: Record<string, unknown>;
      };
      expect(presence.channels[`presence-room.${room}`]).toEqual({ user_count: 1 });
      expect(presence.channels[`post.${post}`]).toBeUndefined();
      const one = await pusher.get({ path: `/channels/presence-room.${room}`, params: { info: "user_count,subscription_count" } });
      expect(await one.json()).toEqual({ occupied: true, user_count: 1, subscription_count: 0 });
      expect(await (await pusher.get({ path: `/channels/post.${post}`, params: { info: "subscription_count" } })).json()).toEqual({ occupied: true, subscription_count: 1 });
      expect(Object.keys(all.channels).filter((name) => name.startsWith("post.native"))).toEqual([]);
      expect(await (await pusher.get({ path: `/channels/post.${uniqueId("empty")}` })).json()).toEqual({ occupied: false });
      expect(await (await pusher.get({ path: `/channels/presence-room.${room}/users` })).json()).toEqual({ users: [{ id: "ada" }] });
    } finally {
      member.close();
      pusherSocket.socket.close();
    }
  });

  it("terminateUserConnections closes the user's connections on every node, through the control channel", async () => {
    const user = uniqueId("term");
    const other = await startTestGateway({ PUSHER_APPS: JSON.stringify([APP]) });
    try {
      const here = await TestClient.connect(gateway().wsUrl, { token: await signToken({ sub: user }) });
      const there = await TestClient.connect(other.wsUrl, { token: await signToken({ sub: user }) });
      const response = await sdk(gateway()).terminateUserConnections(user);
      expect(response.status).toBe(200);
      expect(await here.closed).toMatchObject({ code: 4003 });
      expect(await there.closed).toMatchObject({ code: 4003 });
    } finally {
      await other.stop();
    }
  });

  it("accepts a hand-signed request: the test's signing is the one the SDK uses", async () => {
    const response = await handMade(gateway(), { path: `/apps/${APP.id}/channels`, params: { filter_by_prefix: "post." } });
    expect(response.status).toBe(200);
  });

  it("refuses badly signed requests with 401, naming what is wrong", async () => {
    const body = JSON.stringify({ name: "e", data: "{}", channel: "post.1" });
    const path = `/apps/${APP.id}/events`;
    const cases: Array<[HandMade, string]> = [
      [{ path, body, signature: "0".repeat(64) }, "auth_signature is not the HMAC-SHA256"],
      [{ path, body, secret: "another-secret-0123456789" }, "auth_signature is not the HMAC-SHA256"],
      [{ path, body, timestampSec: Math.floor(Date.now() / 1000) - 601 }, "more than 600 s"],
      [{ path, body, timestampSec: Math.floor(Date.now() / 1000) + 700 }, "more than 600 s"],
      [{ path, body, key: "someone-elses-key" }, "auth_key is not this app's key"],
      [{ path, body, bodyMd5: createHash("md5").update("another body").digest("hex") }, "body_md5 is not the MD5 of the body"],
    ];
    for (const [request, message] of cases) {
      const refused = await refusal(await handMade(gateway(), request));
      expect(refused, message).toMatchObject({ status: 401, code: "unauthorized", message: expect.stringContaining(message) });
    }
    const unsigned = await fetch(`${gateway().httpUrl}${path}`, { method: "POST", body });
    expect(await refusal(unsigned)).toMatchObject({ status: 401, message: expect.stringContaining("auth_signature missing") });
    // The SDK's own error carries the status when the secret is wrong.
    await expect(sdk(gateway(), { ...APP, secret: "wrong-secret-0123456789" }).trigger("post.1", "e", {})).rejects.toMatchObject({ status: 401 });
  });

  it("answers 404 for an unknown app and 403 for a disabled one", async () => {
    expect(await refusal(await handMade(gateway(), { path: "/apps/no-such-app/channels" }))).toMatchObject({ status: 404, code: "not_found" });
    const disabled = await sdk(gateway(), DISABLED).trigger("post.1", "e", {}).catch((error: { status: number; body: string }) => error);
    expect(disabled).toMatchObject({ status: 403 });
  });

  it("refuses bad input with 400 and oversized data with 413", async () => {
    const path = `/apps/${APP.id}/events`;
    const event = (fields: Record<string, unknown>) => JSON.stringify({ name: "e", data: "{}", channel: "post.1", ...fields });
    const cases: Array<[string, number, string]> = [
      ["{not json", 400, "not valid JSON"],
      [event({ channel: undefined, channels: Array.from({ length: 101 }, (_, index) => `post.c${index}`) }), 400, "at most 100 channels"],
      [event({ channel: "post:1" }), 400, "not a Pusher channel name"],
      [event({ channel: "nowhere.1" }), 400, 'no namespace "nowhere"'],
      [event({ channel: "private-post.1" }), 400, "namespace \"post\" has public channels, named post.1"],
      [event({ channel: undefined, channels: ["post.1", "post:2"] }), 400, "channels.1"],
      [event({ channels: ["post.2"] }), 400, "either channels"],
      [event({ name: "has space" }), 400, "event name"],
      [event({ data: { not: "a string" } }), 400, "data must be a string"],
      [event({ socket_id: "abc" }), 400, "socket_id"],
      [event({ info: "everything" }), 400, "info takes"],
      [event({ data: "x".repeat(10_241) }), 413, "over the 10240 bytes"],
      [event({ data: "x".repeat(70_000) }), 413, "body over 65536 bytes"],
    ];
    for (const [body, status, message] of cases) {
      expect(await refusal(await handMade(gateway(), { path, body })), message).toMatchObject({ status, message: expect.stringContaining(message) });
    }
    const batch = JSON.stringify({ batch: Array.from({ length: 11 }, () => ({ name: "e", data: "{}", channel: "post.1" })) });
    expect(await refusal(await handMade(gateway(), { path: `/apps/${APP.id}/batch_events`, body: batch }))).toMatchObject({
      status: 400,
      message: expect.stringContaining("at most 10 events per batch"),
    });
    const channels = `/apps/${APP.id}/channels`;
    expect(await refusal(await handMade(gateway(), { path: channels, params: { info: "user_count" } }))).toMatchObject({ status: 400 });
    expect(await refusal(await handMade(gateway(), { path: `${channels}/post.1`, params: { info: "user_count" } }))).toMatchObject({ status: 400 });
    expect(await refusal(await handMade(gateway(), { path: `${channels}/post.1/users` }))).toMatchObject({ status: 400, message: expect.stringContaining("not a presence channel") });
    expect(await refusal(await handMade(gateway(), { path: `${channels}/post:1` }))).toMatchObject({ status: 400 });
    const terminate = `/apps/${APP.id}/users/not%20a%20user/terminate_connections`;
    expect(await refusal(await handMade(gateway(), { path: terminate, body: "{}" }))).toMatchObject({ status: 400, message: expect.stringContaining("user id") });
  });
});

describe("Pusher REST API rate limits", () => {
  const gateway = suiteGateway({ PUSHER_APPS: JSON.stringify([APP]), API_RATE_PER_SEC: "1", API_RATE_BURST: "2", API_KEY_FAILURES_PER_MIN: "2" });

  it("limits each app to API_RATE_PER_SEC/BURST, then 429 with Retry-After, and refuses an address after API_KEY_FAILURES_PER_MIN bad signatures", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await handMade(gateway(), { path: `/apps/${APP.id}/channels` })).status);
    expect(statuses).toEqual([200, 200, 429]);
    const limited = await handMade(gateway(), { path: `/apps/${APP.id}/channels` });
    expect(limited.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(await refusal(limited)).toMatchObject({ status: 429, message: expect.stringContaining(`too many requests for app ${APP.id}`) });
    const bad = () => handMade(gateway(), { path: `/apps/${APP.id}/channels`, signature: "0".repeat(64) });
    expect([(await bad()).status, (await bad()).status]).toEqual([401, 401]);
    expect(await refusal(await bad())).toMatchObject({ status: 429, message: expect.stringContaining("badly signed") });
  });
});

describe("Pusher REST events on a durable namespace", { timeout: 90_000 }, () => {
  let env: DurableEnv;
  let node: TestGateway;
  beforeAll(async () => {
    env = await DurableEnv.create("pusherdur");
    node = await startTestGateway({ ...env.env, ROLE: "all", PUSHER_APPS: JSON.stringify([APP]) });
  }, 60_000);
  afterAll(async () => {
    await node?.stop();
    await env?.close();
  });

  it("sendToUser reaches the user's own channel user:<id>", async () => {
    const user = uniqueId("u");
    const client = await TestClient.connect(node.wsUrl, { token: await signToken({ sub: user }) });
    try {
      await client.request({ op: "subscribe", channel: `user:${user}` }, 15_000);
      await sdk(node).sendToUser(user, "order.ready", { order: 9 });
      expect(await client.next((frame) => frame.op === "event", 30_000)).toMatchObject({ channel: `user:${user}`, type: "order.ready", data: { order: 9 } });
    } finally {
      client.close();
    }
  });

  it("keeps socket_id's exclusion on the worker's live copy, beside its seq", async () => {
    const room = uniqueId("r");
    const live = await eventsQueue(`room.${room}.#`, { url: env.rabbitmqUrl, exchange: "sobranie.live" });
    try {
      await sdk(node).trigger(`presence-room.${room}`, "App\\Events\\Moved", { to: 3 }, { socket_id: "77.88" });
      const copy = await live.next();
      expect(JSON.parse(copy.content.toString())).toMatchObject({ type: "App\\Events\\Moved", data: { to: 3 }, seq: expect.any(Number) });
      expect(copy.properties.headers?.["x-sobranie-exclude-socket"]).toBe("77.88");
    } finally {
      await live.close();
    }
  });
});
