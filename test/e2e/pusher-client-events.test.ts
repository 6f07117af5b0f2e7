import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AmqpNames } from "@sobranie/protocol/amqp";
import { TestPublisher } from "../support/amqp-tools.js";
import { connected, pusherAppsEnv, pusherClient, rawPusher, rawSubscribed, subscribed, type RawPusher } from "../support/pusher-clients.js";
import { RABBITMQ_URL, startTestGateway, type TestGateway } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";

const NAMESPACES = JSON.stringify([
  { name: "typing", subscribe: "claim", publish: "broadcast", durable: false, presence: false },
  { name: "huddle", subscribe: "claim", publish: "broadcast", durable: false, presence: true },
  { name: "quiet", subscribe: "claim", publish: "none", durable: false, presence: false },
]);
const NO_CLIENT_EVENTS = { id: "app-2", key: "no-client-events-key", secret: "no-client-events-secret-0123" };

const errors = (raw: RawPusher): string[] => raw.frames.filter((frame) => frame.event === "pusher:error").map((frame) => (frame.data as { message: string }).message);

describe("Pusher client events", () => {
  let gateway: TestGateway;
  let publisher: TestPublisher;
  const sockets: RawPusher[] = [];
  const clients: Array<{ disconnect(): void }> = [];

  beforeAll(async () => {
    gateway = await startTestGateway({ PUSHER_APPS: pusherAppsEnv({ clientEvents: true }, [NO_CLIENT_EVENTS]), NAMESPACES });
    publisher = await TestPublisher.open(RABBITMQ_URL);
  }, 60_000);
  afterAll(async () => {
    for (const raw of sockets) raw.socket.close();
    for (const client of clients) client.disconnect();
    await publisher?.close();
    await gateway?.stop();
  });

  it("reach the channel's other subscribers, never the sender, with user_id on presence channels", async () => {
    const sender = pusherClient(gateway.port, { member: { user_id: "ada" } });
    const receiver = pusherClient(gateway.port, { member: { user_id: "bob" } });
    clients.push(sender, receiver);
    await Promise.all([connected(sender), connected(receiver)]);
    const { channel: sent } = await subscribed(sender, "presence-huddle.h1");
    const { channel: heard } = await subscribed(receiver, "presence-huddle.h1");
    const atSender: unknown[] = [];
    const atReceiver: Array<{ data: unknown; userId: unknown }> = [];
    sent.bind("client-wave", (data: unknown) => atSender.push(data));
    heard.bind("client-wave", (data: unknown, metadata: { user_id?: string }) => atReceiver.push({ data, userId: metadata?.user_id }));
    const serverEvents: unknown[] = [];
    sent.bind("server.note", (data: unknown) => serverEvents.push(data));
    expect(sent.trigger("client-wave", { hello: "bob" })).toBe(true);
    await waitFor(() => atReceiver.length === 1);
    expect(atReceiver[0]).toEqual({ data: { hello: "bob" }, userId: "ada" });
    // A later event on the same channel reaches the sender: by then an echo would have come before it.
    await publisher.publish("huddle.h1.server.note", { type: "server.note", data: { n: 1 } });
    await waitFor(() => serverEvents.length === 1);
    expect(atSender).toEqual([]);
  });

  it("are refused on public and encrypted channels, before subscribing, where the namespace takes no publishes, and for apps without clientEvents", async () => {
    const onPublic = await rawSubscribed(gateway.port, "status.x");
    const onPrivate = await rawSubscribed(gateway.port, "private-typing.t2");
    const onEncrypted = await rawSubscribed(gateway.port, "private-encrypted-typing.t3");
    const onQuiet = await rawSubscribed(gateway.port, "private-quiet.q1");
    const offApp = await rawPusher(gateway.port, `/app/${NO_CLIENT_EVENTS.key}?protocol=7`);
    sockets.push(onPublic, onPrivate, onEncrypted, onQuiet, offApp);
    onPublic.send({ event: "client-x", channel: "status.x", data: {} });
    onPrivate.send({ event: "client-x", channel: "private-typing.other", data: {} });
    onEncrypted.send({ event: "client-x", channel: "private-encrypted-typing.t3", data: {} });
    onQuiet.send({ event: "client-x", channel: "private-quiet.q1", data: {} });
    offApp.send({ event: "client-x", channel: "private-typing.t2", data: {} });
    await waitFor(() => [onPublic, onPrivate, onEncrypted, onQuiet, offApp].every((raw) => errors(raw).length === 1));
    expect(errors(onPublic)[0]).toContain("private and presence channels only");
    expect(errors(onPrivate)[0]).toContain("subscribe to private-typing.other before");
    expect(errors(onEncrypted)[0]).toContain("encrypted");
    expect(errors(onQuiet)[0]).toContain("not allowed on quiet:q1");
    expect(errors(offApp)[0]).toContain("turned off for this app");
  });

  it("go to backends on RabbitMQ where the namespace publishes to them, with the member as the envelope's user", async () => {
    const connection = await amqp.connect(RABBITMQ_URL);
    const channel = await connection.createChannel();
    const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, AmqpNames.eventsExchange, "client.room.r1.#");
    const received: Array<{ routingKey: string; body: { type: string; data: unknown; user: string } }> = [];
    await channel.consume(queue, (message) => message && received.push({ routingKey: message.fields.routingKey, body: JSON.parse(message.content.toString()) }), { noAck: true });
    const member = await rawSubscribed(gateway.port, "presence-room.r1", { userId: "cy" });
    sockets.push(member);
    member.send({ event: "client-note", channel: "presence-room.r1", data: { text: "to the backend" } });
    await waitFor(() => received.length === 1);
    expect(received[0]).toMatchObject({ routingKey: "client.room.r1.client-note", body: { type: "client-note", data: { text: "to the backend" }, user: "cy" } });
    await connection.close();
  });

  it("past the frame rate limit are answered pusher:error 4301, and the socket stays", async () => {
    const flooder = await rawSubscribed(gateway.port, "private-typing.t4");
    sockets.push(flooder);
    for (let i = 0; i < 60; i += 1) flooder.send({ event: "client-burst", channel: "private-typing.t4", data: { i } });
    await waitFor(() => flooder.frames.some((frame) => frame.event === "pusher:error"));
    const refusal = flooder.frames.find((frame) => frame.event === "pusher:error")!.data as { code: number };
    expect(refusal.code).toBe(4301);
    expect(flooder.socket.readyState).toBe(flooder.socket.OPEN);
  });
});
