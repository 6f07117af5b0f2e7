import Pusher from "pusher";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connected, PUSHER_APP, pusherAppsEnv, pusherClient, rawSubscribed, subscribed, type RawPusher } from "../support/pusher-clients.js";
import { createRabbitVhost, type RabbitVhost } from "../support/rabbit-vhost.js";
import { startTestGateway, type TestGateway } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { WebhookReceiver } from "../support/webhook-receiver.js";

// The webhook events only the Pusher WebSocket side sees (docs/pusher.md
// "Webhooks", "The entry point of the Pusher side"): pusher-js clients on a
// gateway with its own worker (ROLE=all) on RabbitMQ, a real HTTP receiver,
// and the real `pusher` SDK checking the signatures.

const NAMESPACES = JSON.stringify([
  { name: "typing", subscribe: "claim", publish: "broadcast", durable: false, presence: false },
  { name: "huddle", subscribe: "claim", publish: "backend", durable: false, presence: true },
]);
/** An app whose webhooks want presence events only: none of this side's events go to it. */
const PRESENCE_ONLY = { id: "app-presence", key: "presence-only-key", secret: "presence-only-secret-0123" };
/** Generous: the machine is shared and loaded. */
const ARRIVAL_MS = 30_000;

describe("Pusher webhooks from the WebSocket side", () => {
  let vhost: RabbitVhost;
  let receiver: WebhookReceiver;
  let gateway: TestGateway;
  const clients: Array<{ disconnect(): void }> = [];
  const sockets: RawPusher[] = [];

  beforeAll(async () => {
    vhost = await createRabbitVhost("pushersockhooks");
    receiver = await WebhookReceiver.start();
    gateway = await startTestGateway({
      RABBITMQ_URL: vhost.url,
      ROLE: "all",
      ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {}),
      NAMESPACES,
      PUSHER_APPS: pusherAppsEnv({ clientEvents: true, webhooks: [{ url: receiver.url("/app"), events: ["client_event", "cache_miss"] }] }, [
        { ...PRESENCE_ONLY, clientEvents: true, webhooks: [{ url: receiver.url("/presence-only"), events: ["member_added"] }] },
      ]),
      WEBHOOK_BATCH_WAIT_MS: "20",
    });
  }, 120_000);
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    for (const raw of sockets) raw.socket.close();
    await gateway?.stop();
    await receiver?.down();
    await vhost?.drop();
  });

  it("sends client_event for each client event taken, with user_id on presence channels, signed so the pusher SDK accepts it", async () => {
    const sender = pusherClient(gateway.port, { member: { user_id: "ada" } });
    clients.push(sender);
    await connected(sender);
    const { channel: huddle } = await subscribed(sender, "presence-huddle.w1");
    const { channel: typing } = await subscribed(sender, "private-typing.w1");
    expect(huddle.trigger("client-wave", { hello: "bob" })).toBe(true);
    expect(typing.trigger("client-typing", "a string as it is")).toBe(true);
    const seen = () => receiver.delivered("/app").filter((event) => event.name === "client_event");
    await waitFor(() => seen().length >= 2, ARRIVAL_MS, "two client_event webhooks");
    const socketId = sender.connection.socket_id;
    expect(seen().sort((a, b) => String(a.channel).localeCompare(String(b.channel)))).toEqual([
      { name: "client_event", channel: "presence-huddle.w1", event: "client-wave", data: '{"hello":"bob"}', socket_id: socketId, user_id: "ada" },
      { name: "client_event", channel: "private-typing.w1", event: "client-typing", data: "a string as it is", socket_id: socketId },
    ]);
    const sdk = new Pusher({ appId: PUSHER_APP.id, key: PUSHER_APP.key, secret: PUSHER_APP.secret, cluster: "mt1" });
    for (const request of receiver.to("/app", 200)) {
      expect(sdk.webhook({ headers: request.headers as Record<string, string>, rawBody: request.rawBody }).isValid()).toBe(true);
    }
  });

  it("sends none for a refused client event, nor to an app whose webhooks do not want client_event", async () => {
    const refusedOn = await rawSubscribed(gateway.port, "private-typing.w4");
    sockets.push(refusedOn);
    const before = receiver.delivered("/app").length;
    // Refused: the connection is not subscribed to the channel.
    refusedOn.send({ event: "client-x", channel: "private-typing.w2", data: { n: 0 } });
    await waitFor(() => refusedOn.frames.some((frame) => frame.event === "pusher:error"), ARRIVAL_MS, "the refusal");
    // The other app takes the client event but has no webhook for it.
    const other = await rawSubscribed(gateway.port, "private-typing.w2", { app: PRESENCE_ONLY });
    sockets.push(other);
    other.send({ event: "client-x", channel: "private-typing.w2", data: { n: 1 } });
    // A later client event of the first app arrives: by then the ones before it would have.
    const marker = await rawSubscribed(gateway.port, "private-typing.w3");
    sockets.push(marker);
    marker.send({ event: "client-marker", channel: "private-typing.w3", data: { n: 2 } });
    await waitFor(() => receiver.delivered("/app").some((event) => event.event === "client-marker"), ARRIVAL_MS, "the marker");
    expect(receiver.delivered("/app").slice(before).map((event) => event.event)).toEqual(["client-marker"]);
    expect(receiver.delivered("/presence-only").filter((event) => event.name === "client_event")).toEqual([]);
  });
});
