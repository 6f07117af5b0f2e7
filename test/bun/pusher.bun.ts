import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import PusherServer from "pusher";
import { GatewayProcess } from "../support/gateway-process.js";
import { createRabbitVhost, type RabbitVhost } from "../support/rabbit-vhost.js";
import { uniqueId } from "../support/test-gateway.js";
import { appBackend, collect, connected, PUSHER_APP, pusherAppsEnv, pusherClient, subscribed } from "../support/pusher-clients.js";
import { waitFor } from "../support/wait-for.js";
import { BUN_API_KEY, START_TIMEOUT_MS, startBunGateway, type BunGateway } from "./bun-gateway.js";

// Run with `npm run test:bun` (after `npm run build`): the Pusher endpoint
// (docs/pusher.md) of a gateway under `bun dist/src/main.js`, on RabbitMQ in
// a vhost of its own. Clients are Bun's own WebSocket speaking the Pusher
// protocol frame by frame, and pusher-js's Node build; the app's backend is
// the real `pusher` server SDK (channel auth, REST API).

const CASE_TIMEOUT_MS = 30_000;
// typing: private channels with client events; huddle: presence channels.
const NAMESPACES = JSON.stringify([
  { name: "typing", subscribe: "claim", publish: "broadcast", durable: false, presence: false },
  { name: "huddle", subscribe: "claim", publish: "broadcast", durable: false, presence: true },
]);

interface PusherFrame {
  readonly event: string;
  readonly channel?: string;
  readonly data?: unknown;
}

/** Bun's global WebSocket client, which also sends pings (and fires `pong`). */
interface BunClientWebSocket extends WebSocket {
  ping(): void;
}

/** A Pusher connection on Bun's global WebSocket: every frame it got, in order, and its close code. */
interface RawPusher {
  readonly socket: BunClientWebSocket;
  readonly frames: PusherFrame[];
  readonly closed: Promise<number>;
  /** From `pusher:connection_established`. */
  readonly socketId: string;
  send(frame: unknown): void;
  /** The first frame received matching `predicate`, waiting for it. */
  next(predicate: (frame: PusherFrame) => boolean): Promise<PusherFrame>;
}

/** The JSON text inside a frame's `data`, parsed (the server sends `data` as a string, as Pusher does). */
function dataOf<T>(frame: PusherFrame): T {
  return JSON.parse(frame.data as string) as T;
}

/** Connects to `/app/{key}` on `port` and resolves at the socket's first frame, or at its close (a refusal). */
async function connectPusher(port: number, path = `/app/${PUSHER_APP.key}?protocol=7`): Promise<RawPusher> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`) as BunClientWebSocket;
  const frames: PusherFrame[] = [];
  socket.addEventListener("message", (message) => frames.push(JSON.parse(String(message.data)) as PusherFrame));
  let isClosed = false;
  const closed = new Promise<number>((resolve) =>
    socket.addEventListener("close", (event) => {
      isClosed = true;
      resolve(event.code);
    }),
  );
  await waitFor(() => frames.length > 0 || isClosed, 10_000, "the first frame or the close");
  const established = frames[0]?.event === "pusher:connection_established" ? dataOf<{ socket_id: string }>(frames[0]) : undefined;
  const next = async (predicate: (frame: PusherFrame) => boolean): Promise<PusherFrame> => {
    await waitFor(() => frames.some(predicate), 10_000, "a matching frame");
    return frames.find(predicate)!;
  };
  return { socket, frames, closed, socketId: established?.socket_id ?? "", send: (frame) => socket.send(JSON.stringify(frame)), next };
}

describe("the Pusher endpoint on Bun", () => {
  let vhost: RabbitVhost | undefined;
  let gateway: BunGateway;
  let rest: PusherServer;
  const sockets: WebSocket[] = [];
  const clients: Array<{ disconnect(): void }> = [];

  const rawPusher = async (path?: string): Promise<RawPusher> => {
    const raw = await connectPusher(gateway.port, path);
    sockets.push(raw.socket);
    return raw;
  };

  /** A connection that sent `pusher:subscribe` for `channel` (signed by `signer` for private and presence ones), once it was answered. */
  const subscribedRaw = async (channel: string, options: { member?: PusherServer.PresenceChannelData; signer?: PusherServer } = {}): Promise<RawPusher & { answer: PusherFrame }> => {
    const raw = await rawPusher();
    const signer = options.signer ?? appBackend;
    const auth = channel.startsWith("private-") ? signer.authorizeChannel(raw.socketId, channel) : channel.startsWith("presence-") ? signer.authorizeChannel(raw.socketId, channel, options.member!) : {};
    raw.send({ event: "pusher:subscribe", data: { channel, ...auth } });
    const answer = await raw.next((frame) => frame.channel === channel && /subscription_(succeeded|error)$/.test(frame.event));
    return { ...raw, answer };
  };

  beforeAll(async () => {
    vhost = await createRabbitVhost("bun-pusher");
    gateway = await startBunGateway({ RABBITMQ_URL: vhost.url, ROLE: "gateway", PUSHER_APPS: pusherAppsEnv({ clientEvents: true }), NAMESPACES });
    rest = new PusherServer({ appId: PUSHER_APP.id, key: PUSHER_APP.key, secret: PUSHER_APP.secret, host: "127.0.0.1", port: String(gateway.port), useTLS: false });
  }, START_TIMEOUT_MS);

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    for (const client of clients) client.disconnect();
    const code = await gateway?.stop();
    await GatewayProcess.killAll();
    await vhost?.drop();
    expect(code).toBe(0);
  }, START_TIMEOUT_MS);

  it("establishes a connection with a socket_id and an activity_timeout, answers pusher:ping, and closes an unknown key with 4001", async () => {
    const raw = await rawPusher(`/app/${PUSHER_APP.key}?protocol=7&client=js&version=8.6.0`);
    expect(raw.frames[0]!.event).toBe("pusher:connection_established");
    const established = dataOf<{ socket_id: string; activity_timeout: number }>(raw.frames[0]!);
    expect(/^\d+\.\d+$/.test(established.socket_id)).toBe(true);
    // Half of the default PRESENCE_TTL_MS (60 s).
    expect(established.activity_timeout).toBe(30);
    raw.send({ event: "pusher:ping", data: {} });
    expect(await raw.next((frame) => frame.event === "pusher:pong")).toMatchObject({ event: "pusher:pong" });
    expect(await (await rawPusher("/app/no-such-key?protocol=7")).closed).toBe(4001);
    expect(await (await rawPusher(`/app/${PUSHER_APP.key}`)).closed).toBe(4008);
  }, CASE_TIMEOUT_MS);

  it("delivers to a public channel's subscriber an event of the REST API and one of the native HTTP publish API, and the REST API sees it occupied", async () => {
    const id = uniqueId("pub");
    const name = `post.${id}`;
    const raw = await subscribedRaw(name);
    expect(raw.answer).toMatchObject({ event: "pusher_internal:subscription_succeeded", channel: name });
    expect((await rest.trigger(name, "order.shipped", { via: "rest" })).status).toBe(200);
    const fromRest = await raw.next((frame) => frame.event === "order.shipped");
    expect(dataOf(fromRest)).toEqual({ via: "rest" });
    const published = await fetch(`${gateway.httpUrl}/api/v1/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${BUN_API_KEY}` },
      body: JSON.stringify({ channel: `post:${id}`, type: "comment.created", data: { via: "native" } }),
    });
    expect(published.status).toBe(202);
    const fromNative = await raw.next((frame) => frame.event === "comment.created");
    expect(fromNative.channel).toBe(name);
    expect(dataOf(fromNative)).toEqual({ via: "native" });
    const info = await rest.get({ path: `/channels/${name}`, params: { info: "subscription_count" } });
    expect(await info.json()).toEqual({ occupied: true, subscription_count: 1 });
  }, CASE_TIMEOUT_MS);

  it("subscribes a private channel with the app's signature; a forged one is an AuthError and the socket stays", async () => {
    const id = uniqueId("priv");
    const signed = await subscribedRaw(`private-typing.${id}`);
    expect(signed.answer.event).toBe("pusher_internal:subscription_succeeded");
    const forger = new PusherServer({ appId: PUSHER_APP.id, key: PUSHER_APP.key, secret: "not-the-app-secret-0123456789", host: "127.0.0.1", useTLS: false });
    const forged = await subscribedRaw(`private-typing.${id}-x`, { signer: forger });
    expect(forged.answer).toMatchObject({ event: "pusher:subscription_error", data: { type: "AuthError", status: 401 } });
    forged.send({ event: "pusher:ping", data: {} });
    await forged.next((frame) => frame.event === "pusher:pong");
    expect(forged.socket.readyState).toBe(WebSocket.OPEN);
  }, CASE_TIMEOUT_MS);

  it("lists a presence channel's members on subscribe, and tells a member of another's arrival and departure", async () => {
    const name = `presence-huddle.${uniqueId("pres")}`;
    const ada = await subscribedRaw(name, { member: { user_id: "ada", user_info: { name: "Ada" } } });
    expect(ada.answer.event).toBe("pusher_internal:subscription_succeeded");
    expect(dataOf(ada.answer)).toEqual({ presence: { ids: ["ada"], hash: { ada: { name: "Ada" } }, count: 1 } });
    const bob = await subscribedRaw(name, { member: { user_id: "bob" } });
    const listed = dataOf<{ presence: { ids: string[]; count: number } }>(bob.answer).presence;
    expect([[...listed.ids].sort(), listed.count]).toEqual([["ada", "bob"], 2]);
    const added = await ada.next((frame) => frame.event === "pusher_internal:member_added");
    expect([added.channel, dataOf(added)]).toEqual([name, { user_id: "bob" }]);
    bob.socket.close();
    const removed = await ada.next((frame) => frame.event === "pusher_internal:member_removed");
    expect([removed.channel, dataOf(removed)]).toEqual([name, { user_id: "bob" }]);
  }, CASE_TIMEOUT_MS);

  it("relays a client event to the channel's other subscribers, never back to the sender", async () => {
    const name = `private-typing.${uniqueId("client")}`;
    const sender = await subscribedRaw(name);
    const receiver = await subscribedRaw(name);
    sender.send({ event: "client-typing", channel: name, data: { who: "sender" } });
    const heard = await receiver.next((frame) => frame.event === "client-typing");
    expect([heard.channel, dataOf(heard)]).toEqual([name, { who: "sender" }]);
    // A later event on the channel reaches the sender after anything sent to it before: an echo would be ahead of it.
    expect((await rest.trigger(name, "server.note", { n: 1 })).status).toBe(200);
    await sender.next((frame) => frame.event === "server.note");
    expect(sender.frames.filter((frame) => frame.event === "client-typing")).toEqual([]);
  }, CASE_TIMEOUT_MS);

  it("leaves out of a REST event the socket its socket_id names, and only that one", async () => {
    const name = `post.${uniqueId("exclude")}`;
    const excluded = await subscribedRaw(name);
    const other = await subscribedRaw(name);
    expect((await rest.trigger(name, "order.shipped", { n: 1 }, { socket_id: excluded.socketId })).status).toBe(200);
    expect((await rest.trigger(name, "order.shipped", { n: 2 })).status).toBe(200);
    await other.next((frame) => frame.event === "order.shipped" && dataOf<{ n: number }>(frame).n === 2);
    await excluded.next((frame) => frame.event === "order.shipped");
    // The second event reached both: the first, published before it, would have reached the excluded socket ahead of it.
    const shipped = (raw: RawPusher) => raw.frames.filter((frame) => frame.event === "order.shipped").map((frame) => dataOf(frame));
    expect([shipped(excluded), shipped(other)]).toEqual([[{ n: 2 }], [{ n: 1 }, { n: 2 }]]);
  }, CASE_TIMEOUT_MS);

  it("sends pusher_internal:subscription_count right after a subscription, and the new count to a subscriber when another joins", async () => {
    const name = `post.${uniqueId("count")}`;
    const first = await subscribedRaw(name);
    const own = await first.next((frame) => frame.event === "pusher_internal:subscription_count");
    expect([own.channel, dataOf(own)]).toEqual([name, { subscription_count: 1 }]);
    expect(first.frames.indexOf(own)).toBeGreaterThan(first.frames.indexOf(first.answer));
    const second = await subscribedRaw(name);
    expect(dataOf(await second.next((frame) => frame.event === "pusher_internal:subscription_count"))).toEqual({ subscription_count: 2 });
    await first.next((frame) => frame.event === "pusher_internal:subscription_count" && dataOf<{ subscription_count: number }>(frame).subscription_count === 2);
  }, CASE_TIMEOUT_MS);

  it("serves pusher-js (its Node build, run by Bun): it connects, subscribes a private channel signed by the SDK, and gets a triggered event", async () => {
    const client = pusherClient(gateway.port);
    clients.push(client);
    await connected(client);
    const name = `private-typing.${uniqueId("js")}`;
    const { channel } = await subscribed(client, name);
    const received = collect(channel, "order.shipped");
    expect((await rest.trigger(name, "order.shipped", { id: 7 })).status).toBe(200);
    await waitFor(() => received.length === 1, 10_000, "the event at pusher-js");
    expect(received).toEqual([{ id: 7 }]);
  }, CASE_TIMEOUT_MS);
});

describe("the Pusher endpoint on Bun: heartbeats and frame limits (embedded)", () => {
  let gateway: BunGateway;
  const sockets: WebSocket[] = [];

  const connect = async (): Promise<RawPusher> => {
    const raw = await connectPusher(gateway.port);
    sockets.push(raw.socket);
    return raw;
  };
  const events = (raw: RawPusher): string[] => raw.frames.map((frame) => frame.event);

  beforeAll(async () => {
    // activity_timeout 2 s, closed after 4 s of silence.
    gateway = await startBunGateway({ PUSHER_APPS: pusherAppsEnv(), HEARTBEAT_MS: "1000", PRESENCE_TTL_MS: "4000", MAX_FRAME_BYTES: "4096" });
  }, START_TIMEOUT_MS);

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    const code = await gateway?.stop();
    await GatewayProcess.killAll();
    expect(code).toBe(0);
  }, START_TIMEOUT_MS);

  it("pings a silent connection both ways and keeps it while its WebSocket answers the ping frames; a connection sending WebSocket pings gets pongs", async () => {
    // Bun's client WebSocket answers ping frames on its own (4201 for a client that answers nothing is covered on Node, test/e2e/pusher-connection.test.ts).
    const silent = await connect();
    let pinged = 0;
    silent.socket.addEventListener("ping", () => (pinged += 1));
    const pinging = await connect();
    let pongs = 0;
    pinging.socket.addEventListener("pong", () => (pongs += 1));
    // Every 500 ms: each ping counts as activity, so it is never silent for activity_timeout (2 s).
    const pinger = setInterval(() => pinging.socket.ping(), 500);
    let closedWith: number | undefined;
    void silent.closed.then((code) => (closedWith = code));
    try {
      // Pinged every 2 s of silence: three pings span more than PRESENCE_TTL_MS (4 s).
      await waitFor(() => pinged >= 3 || closedWith !== undefined, 20_000, "three pings of the silent connection");
    } finally {
      clearInterval(pinger);
    }
    expect(closedWith).toBeUndefined();
    expect(events(silent).filter((event) => event === "pusher:ping").length).toBeGreaterThanOrEqual(3);
    expect(pongs).toBeGreaterThan(0);
    expect(pinging.socket.readyState).toBe(WebSocket.OPEN);
    expect(events(pinging)).toEqual(["pusher:connection_established"]);
  }, CASE_TIMEOUT_MS);

  it("answers a binary frame with pusher:error and keeps the socket, and a frame over MAX_FRAME_BYTES with pusher:error, then closes 1009", async () => {
    const raw = await connect();
    raw.socket.send(new Uint8Array([1, 2, 3]));
    await raw.next((frame) => frame.event === "pusher:error");
    expect(raw.socket.readyState).toBe(WebSocket.OPEN);
    raw.socket.send(JSON.stringify({ event: "client-big", channel: "private-user.x", data: "x".repeat(5_000) }));
    expect(await raw.closed).toBe(1009);
    expect(events(raw)).toEqual(["pusher:connection_established", "pusher:error", "pusher:error"]);
    // Over twice the limit, Bun's own frame cap closes it, with the same code.
    const huge = await connect();
    huge.socket.send("x".repeat(10_000));
    expect(await huge.closed).toBe(1009);
  }, CASE_TIMEOUT_MS);
});
