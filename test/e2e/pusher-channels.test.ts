import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestPublisher } from "../support/amqp-tools.js";
import PusherServer from "pusher";
import { collect, connected, ENCRYPTION_MASTER_KEY, PUSHER_APP, pusherAppsEnv, pusherClient, rawPusher, refused, subscribed } from "../support/pusher-clients.js";
import { RABBITMQ_URL, signToken, startTestGateway, type TestGateway } from "../support/test-gateway.js";
import { TestClient } from "../support/ws-client.js";
import { waitFor } from "../support/wait-for.js";

const API_KEY = "pusher-channels-api-key-0123456789";
const NAMESPACES = JSON.stringify([
  { name: "typing", subscribe: "any", publish: "broadcast", durable: false, presence: false },
  { name: "vault", subscribe: "claim", publish: "none", durable: false, presence: false },
]);

describe("Pusher channels: each kind, its auth, and events from every way in", () => {
  let gateway: TestGateway;
  let publisher: TestPublisher;
  const clients: Array<{ disconnect(): void }> = [];
  const client = async (options: Parameters<typeof pusherClient>[1] = {}) => {
    const created = pusherClient(gateway.port, options);
    clients.push(created);
    await connected(created);
    return created;
  };

  beforeAll(async () => {
    gateway = await startTestGateway({ PUSHER_APPS: pusherAppsEnv(), API_KEYS: API_KEY, NAMESPACES });
    publisher = await TestPublisher.open(RABBITMQ_URL);
  }, 60_000);
  afterAll(async () => {
    for (const created of clients) created.disconnect();
    await publisher?.close();
    await gateway?.stop();
  });

  it("a public channel needs no auth and gets events of the HTTP publish API and of RabbitMQ, data as published", async () => {
    const pusher = await client();
    const { channel, data } = await subscribed(pusher, "post.p1");
    expect(data).toEqual({});
    const received = collect(channel, "comment.created");
    const laravel = collect(channel, "App\\Events\\OrderShipped");
    const response = await fetch(`${gateway.httpUrl}/api/v1/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ channel: "post:p1", type: "comment.created", data: { text: "over HTTP", n: 1 } }),
    });
    expect(response.status).toBe(202);
    await waitFor(() => received.length === 1);
    expect(received[0]).toEqual({ text: "over HTTP", n: 1 });
    await publisher.publish("post.p1.App\\Events\\OrderShipped", { type: "App\\Events\\OrderShipped", data: { order: 7 } });
    await waitFor(() => laravel.length === 1);
    expect(laravel[0]).toEqual({ order: 7 });
  });

  it("a channel's native subscribers and Pusher subscribers get the same events (a native client's broadcast publish too)", async () => {
    const pusher = await client();
    const { channel } = await subscribed(pusher, "typing.t1");
    const received = collect(channel, "typing.started");
    const native = await TestClient.connect(gateway.wsUrl, { token: await signToken({ sub: "ada" }) });
    expect(await native.request({ op: "subscribe", channel: "typing:t1" })).toMatchObject({ op: "ok" });
    expect(await native.request({ op: "publish", channel: "typing:t1", type: "typing.started", data: { who: "ada" } })).toMatchObject({ op: "ok" });
    await waitFor(() => received.length === 1);
    expect(received[0]).toEqual({ who: "ada" });
    expect(await native.next((frame) => frame.op === "event")).toMatchObject({ channel: "typing:t1", type: "typing.started", data: { who: "ada" } });
    native.close();
  });

  it("a private channel takes the app's signature for this socket; a forged or missing one is an AuthError and the socket stays", async () => {
    const forger = await client({ secret: "not-the-app-secret-0123456789" });
    const forged = await refused(forger, "private-user.ada");
    expect(forged).toMatchObject({ type: "AuthError", status: 401 });
    expect(forged.error).toContain("signature");
    // The same socket still subscribes to a public channel.
    await subscribed(forger, "post.p2");
    expect(forger.connection.state).toBe("connected");
    const pusher = await client();
    expect((await subscribed(pusher, "private-user.ada")).data).toEqual({});
  });

  it("an encrypted channel relays what the pusher SDK encrypted: pusher-js decrypts it, and the gateway only ever carries ciphertext", async () => {
    const pusher = await client();
    const { channel } = await subscribed(pusher, "private-encrypted-vault.v1");
    const received = collect(channel, "secret.shared");
    // A native subscriber of the same channel gets what the gateway relays: the SDK's nonce and ciphertext.
    const native = await TestClient.connect(gateway.wsUrl, { token: await signToken({ sub: "auditor", channels: ["vault:v1"] }) });
    await native.request({ op: "subscribe", channel: "vault:v1" });
    const backend = new PusherServer({
      appId: PUSHER_APP.id,
      key: PUSHER_APP.key,
      secret: PUSHER_APP.secret,
      host: "127.0.0.1",
      port: String(gateway.port),
      useTLS: false,
      encryptionMasterKeyBase64: ENCRYPTION_MASTER_KEY,
    });
    expect((await backend.trigger("private-encrypted-vault.v1", "secret.shared", { code: "1234" })).status).toBe(200);
    await waitFor(() => received.length === 1, 10_000, "pusher-js decrypted the event");
    expect(received[0]).toEqual({ code: "1234" });
    const relayed = await native.next((frame) => frame.op === "event");
    expect(relayed).toMatchObject({ channel: "vault:v1", type: "secret.shared", data: { nonce: expect.any(String), ciphertext: expect.any(String) } });
    expect(JSON.stringify(relayed)).not.toContain("1234");
    native.close();
  });

  it("refuses names that map to nothing: the wrong kind (naming the right one), an unknown namespace, a bad id, a cache channel of a live namespace", async () => {
    const pusher = await client();
    const wrongKind = await refused(pusher, "private-room.r1");
    expect(wrongKind).toMatchObject({ type: "SubscriptionError", status: 400 });
    expect(wrongKind.error).toContain("presence-room.r1");
    const publicRoom = await refused(pusher, "room.r1");
    expect(publicRoom.error).toContain("presence-room.r1");
    expect(await refused(pusher, "private-nowhere.1")).toMatchObject({ type: "SubscriptionError", status: 404 });
    expect(await refused(pusher, "post.a;b")).toMatchObject({ status: 400 });
    expect((await refused(pusher, "cache-post.1")).error).toContain('namespace "post" is not durable');
  });

  it("unsubscribing stops the channel's events at the server", async () => {
    // Raw sockets: pusher-js would drop an unsubscribed channel's events itself.
    const leaving = await rawPusher(gateway.port);
    const staying = await rawPusher(gateway.port);
    const succeeded = (raw: typeof leaving) => raw.frames.some((frame) => frame.event === "pusher_internal:subscription_succeeded");
    const events = (raw: typeof leaving) => raw.frames.filter((frame) => frame.event === "x");
    leaving.send({ event: "pusher:subscribe", data: { channel: "post.p3" } });
    staying.send({ event: "pusher:subscribe", data: { channel: "post.p3" } });
    await waitFor(() => succeeded(leaving) && succeeded(staying));
    await publisher.publish("post.p3.x", { type: "x", data: { n: 1 } });
    await waitFor(() => events(leaving).length === 1 && events(staying).length === 1);
    expect(events(leaving)[0]).toEqual({ event: "x", channel: "post.p3", data: '{"n":1}' });
    leaving.send({ event: "pusher:unsubscribe", data: { channel: "post.p3" } });
    // Its next frame proves the unsubscribe was read before the event below was published.
    leaving.send({ event: "pusher:ping" });
    await waitFor(() => leaving.frames.some((frame) => frame.event === "pusher:pong"));
    await publisher.publish("post.p3.x", { type: "x", data: { n: 2 } });
    await waitFor(() => events(staying).length === 2);
    expect(events(leaving)).toHaveLength(1);
    leaving.socket.close();
    staying.socket.close();
  });
});
