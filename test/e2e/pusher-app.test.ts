import PusherServer from "pusher";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayProcess } from "../support/gateway-process.js";
import { type PresenceGateway, startPresenceGateway } from "../support/presence-gateways.js";
import { echoClient } from "../support/echo-clients.js";
import { appBackend, collect, connected, PUSHER_APP, pusherAppsEnv, pusherClient, subscribed, type PresenceChannel } from "../support/pusher-clients.js";
import { createRabbitVhost, type RabbitVhost } from "../support/rabbit-vhost.js";
import { TEST_JWT_SECRET, uniqueId } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { WebhookReceiver } from "../support/webhook-receiver.js";

// An unmodified Pusher app end to end across two gateway nodes: a Laravel
// front end (laravel-echo on pusher-js) on one node, a pusher-js front end
// on the other, the app's backend on the real `pusher` server SDK (its
// auth signatures, its REST calls, its webhook checks), a worker sending
// webhooks to the app's receiver. Only host and credentials are ours.

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const NAMESPACES = JSON.stringify([
  { name: "orders", subscribe: "claim", publish: "none", durable: false, presence: false },
  { name: "huddle", subscribe: "claim", publish: "broadcast", durable: false, presence: true },
]);
const ACROSS_NODES_MS = 15_000;

describe("an unmodified Pusher app across two gateway nodes: laravel-echo, pusher-js and the pusher server SDK", () => {
  let vhost: RabbitVhost;
  let receiver: WebhookReceiver;
  let nodes: PresenceGateway[] = [];
  const disconnects: Array<() => void> = [];
  const run = uniqueId("app").slice(4);

  beforeAll(async () => {
    vhost = await createRabbitVhost("pusher-app");
    receiver = await WebhookReceiver.start();
    const env = {
      PUSHER_APPS: pusherAppsEnv({ clientEvents: true, webhooks: [{ url: receiver.url("/hooks") }] }),
      NAMESPACES,
      HEARTBEAT_MS: "300",
      PRESENCE_TTL_MS: "3000",
    };
    nodes = await Promise.all(["n1", "n2"].map((name) => startPresenceGateway(`${name}-${run}`, vhost.url, undefined, env)));
    const worker = GatewayProcess.start([], {
      PORT: "0",
      HOST: "127.0.0.1",
      ROLE: "worker",
      NODE_ID: `w-${run}`,
      RABBITMQ_URL: vhost.url,
      DATABASE_URL,
      JWT_SECRET: TEST_JWT_SECRET,
      LOG_LEVEL: "info",
      NAMESPACES,
      PUSHER_APPS: env.PUSHER_APPS,
      WEBHOOK_BATCH_WAIT_MS: "100",
    });
    await worker.waitForOutput(/"msg":"ready"/);
  }, 180_000);

  afterAll(async () => {
    for (const disconnect of disconnects) disconnect();
    await GatewayProcess.killAll();
    await receiver?.down();
    await vhost?.drop();
  });

  it("presence, private events from the REST API, client events and webhooks reach both fronts, whichever node holds them", async () => {
    const [n1, n2] = nodes as [PresenceGateway, PresenceGateway];
    const huddle = `huddle.h${run}`;
    const orders = `orders.o${run}`;

    // The Laravel front end on n1: a presence channel and a private one.
    const ada = echoClient(n1.port, { user_id: "ada", user_info: { name: "Ada" } });
    disconnects.push(() => ada.disconnect());
    let here: unknown[] | undefined;
    const joining: unknown[] = [];
    const leaving: unknown[] = [];
    const whispers: unknown[] = [];
    const shipped: unknown[] = [];
    ada
      .join(huddle)
      .here((users: unknown[]) => (here = users))
      .joining((user: unknown) => joining.push(user))
      .leaving((user: unknown) => leaving.push(user))
      .listenForWhisper("typing", (data: unknown) => whispers.push(data));
    let adaOnOrders = false;
    ada.private(orders).subscribed(() => (adaOnOrders = true)).listen("OrderShipped", (event: unknown) => shipped.push(event));
    await waitFor(() => here !== undefined && adaOnOrders, ACROSS_NODES_MS, "ada's channels subscribed");
    expect(here).toEqual([{ name: "Ada" }]);

    // The pusher-js front end on n2, the same channels by their Pusher names.
    const bob = pusherClient(n2.port, { member: { user_id: "bob", user_info: { name: "Bob" } } });
    disconnects.push(() => bob.disconnect());
    await connected(bob);
    const presence = await subscribed<PresenceChannel>(bob, `presence-${huddle}`);
    const bobOrders = collect((await subscribed(bob, `private-${orders}`)).channel, "App\\Events\\OrderShipped");
    const bobTyping = collect(presence.channel, "client-typing");
    await waitFor(() => presence.channel.members.count === 2, ACROSS_NODES_MS, "bob sees both members");
    await waitFor(() => joining.length === 1, ACROSS_NODES_MS, "ada sees bob join");
    expect(joining[0]).toEqual({ name: "Bob" });

    // The backend, on the other node from ada: an event on the private channel reaches both.
    const backend = new PusherServer({ appId: PUSHER_APP.id, key: PUSHER_APP.key, secret: PUSHER_APP.secret, host: "127.0.0.1", port: String(n2.port), useTLS: false });
    expect((await backend.trigger(`private-${orders}`, "App\\Events\\OrderShipped", { order: { id: 7 } })).status).toBe(200);
    await waitFor(() => shipped.length === 1 && bobOrders.length === 1, ACROSS_NODES_MS, "OrderShipped on both nodes");
    expect(shipped[0]).toEqual({ order: { id: 7 } });
    expect(bobOrders[0]).toEqual({ order: { id: 7 } });
    const users = (await (await backend.get({ path: `/channels/presence-${huddle}/users` })).json()) as { users: Array<{ id: string }> };
    expect(users.users.map((user) => user.id).sort()).toEqual(["ada", "bob"]);

    // A client event from bob on n2 is ada's whisper on n1, never bob's own.
    expect(presence.channel.trigger("client-typing", { typing: true })).toBe(true);
    await waitFor(() => whispers.length === 1, ACROSS_NODES_MS, "ada gets bob's whisper");
    expect(whispers[0]).toEqual({ typing: true });

    bob.disconnect();
    await waitFor(() => leaving.length === 1, ACROSS_NODES_MS, "ada sees bob leave");
    expect(leaving[0]).toEqual({ name: "Bob" });
    expect(bobTyping).toEqual([]);

    // The app's webhooks, each once, signed so the app's SDK accepts them.
    const seen = () => receiver.delivered("/hooks").map((event) => [event.name, event.channel, event.user_id]);
    const expected = [
      ["channel_occupied", `presence-${huddle}`, undefined],
      ["member_added", `presence-${huddle}`, "ada"],
      ["channel_occupied", `private-${orders}`, undefined],
      ["member_added", `presence-${huddle}`, "bob"],
      ["client_event", `presence-${huddle}`, "bob"],
      ["member_removed", `presence-${huddle}`, "bob"],
    ];
    await waitFor(() => expected.every((event) => seen().some((got) => JSON.stringify(got) === JSON.stringify(event))), ACROSS_NODES_MS, "the webhooks");
    for (const event of expected) expect(seen().filter((got) => JSON.stringify(got) === JSON.stringify(event))).toHaveLength(1);
    const whisper = receiver.delivered("/hooks").find((event) => event.name === "client_event");
    expect(whisper).toMatchObject({ event: "client-typing", data: JSON.stringify({ typing: true }) });
    for (const request of receiver.to("/hooks", 200)) {
      expect(appBackend.webhook({ headers: request.headers as Record<string, string>, rawBody: request.rawBody }).isValid()).toBe(true);
    }
  });
});
