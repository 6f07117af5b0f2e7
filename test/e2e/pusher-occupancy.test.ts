import PusherServer from "pusher";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayProcess } from "../support/gateway-process.js";
import { BackendPresenceWatch, type PresenceGateway, startPresenceGateway } from "../support/presence-gateways.js";
import { connected, PUSHER_APP, pusherAppsEnv, pusherClient, subscribed } from "../support/pusher-clients.js";
import { createRabbitVhost, type RabbitVhost } from "../support/rabbit-vhost.js";
import { uniqueId } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";

// Subscription counts and occupancy of non-presence channels, cluster-wide
// (docs/pusher.md "Occupancy"): pusher-js clients on two gateway processes
// on a vhost of their own, what pusher-js shows (`pusher:subscription_count`),
// what the REST API answers on each node (the real `pusher` server SDK), and
// the occupancy events backends get. PRESENCE_TTL_MS 3000: a node's death is
// seen within seconds.
const ACROSS_NODES_MS = 15_000;

describe("Pusher subscription counts and occupancy across two gateway processes", () => {
  let vhost: RabbitVhost;
  let nodes: PresenceGateway[] = [];
  let backend: BackendPresenceWatch;
  const clients: Array<{ disconnect(): void }> = [];
  const run = uniqueId("po").slice(3);

  /** A pusher-js client on `node` subscribed to `name`, with every subscription count it was shown. */
  const subscriber = async (node: PresenceGateway, name: string) => {
    const client = pusherClient(node.port);
    clients.push(client);
    await connected(client);
    const { channel } = await subscribed(client, name);
    const shown: number[] = [];
    channel.bind("pusher:subscription_count", (data: { subscription_count: number }) => shown.push(data.subscription_count));
    return { client, channel, shown };
  };

  const rest = (node: PresenceGateway) =>
    new PusherServer({ appId: PUSHER_APP.id, key: PUSHER_APP.key, secret: PUSHER_APP.secret, host: "127.0.0.1", port: String(node.port), useTLS: false });

  const countOn = async (node: PresenceGateway, name: string): Promise<unknown> =>
    (await rest(node).get({ path: `/channels/${name}`, params: { info: "subscription_count" } })).json();

  beforeAll(async () => {
    vhost = await createRabbitVhost("pusher-occupancy");
    const env = { PUSHER_APPS: pusherAppsEnv(), HEARTBEAT_MS: "300", PRESENCE_TTL_MS: "3000" };
    nodes = await Promise.all(["n1", "n2"].map((name) => startPresenceGateway(`${name}-${run}`, vhost.url, undefined, env)));
    backend = await BackendPresenceWatch.open(vhost.url);
  }, 120_000);

  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await backend?.close();
    await GatewayProcess.killAll();
    await vhost?.drop();
  });

  it("counts a channel's subscriptions on both nodes: pusher-js is shown the count, the REST API answers it on either node", async () => {
    const [n1, n2] = nodes as [PresenceGateway, PresenceGateway];
    const name = `post.c${run}`;
    const first = await subscriber(n1, name);
    await waitFor(() => first.channel.subscriptionCount === 1, ACROSS_NODES_MS, "the first subscriber shown 1");
    const second = await subscriber(n2, name);
    await waitFor(() => first.channel.subscriptionCount === 2 && second.channel.subscriptionCount === 2, ACROSS_NODES_MS, "both shown 2");
    expect(first.shown.at(-1)).toBe(2);
    await waitFor(async () => JSON.stringify(await countOn(n1, name)) === JSON.stringify({ occupied: true, subscription_count: 2 }), ACROSS_NODES_MS, "n1 answers 2");
    expect(await countOn(n2, name)).toEqual({ occupied: true, subscription_count: 2 });
    const listed = (await (await rest(n2).get({ path: "/channels", params: { filter_by_prefix: "post." } })).json()) as { channels: Record<string, unknown> };
    expect(listed.channels[name]).toEqual({});

    second.client.disconnect();
    await waitFor(() => first.channel.subscriptionCount === 1, ACROSS_NODES_MS, "the first subscriber shown 1 again");
    first.client.unsubscribe(name);
    await waitFor(async () => JSON.stringify(await countOn(n2, name)) === JSON.stringify({ occupied: false, subscription_count: 0 }), ACROSS_NODES_MS, "vacant on n2");
  });

  it("publishes the channel's occupancy to backends once per change, whichever node's subscriber made it", async () => {
    const [n1, n2] = nodes as [PresenceGateway, PresenceGateway];
    const name = `post.o${run}`;
    const keys = () => backend.keys(`post.o${run}.`);
    const a = await subscriber(n1, name);
    const b = await subscriber(n2, name);
    await waitFor(() => keys().length >= 1, ACROSS_NODES_MS, "occupied");
    // Both subscriptions known on both nodes before the first leaves: the publishing node decides in the order changes reach it.
    await waitFor(() => a.channel.subscriptionCount === 2 && b.channel.subscriptionCount === 2, ACROSS_NODES_MS, "both shown 2");
    a.client.disconnect();
    await waitFor(() => b.channel.subscriptionCount === 1, ACROSS_NODES_MS, "b shown 1");
    b.client.disconnect();
    await waitFor(() => keys().length >= 2, ACROSS_NODES_MS, "vacated");
    await waitFor(async () => JSON.stringify(await countOn(n1, name)) === JSON.stringify({ occupied: false, subscription_count: 0 }), ACROSS_NODES_MS);
    expect(keys()).toEqual([`presence.post.o${run}.occupied`, `presence.post.o${run}.vacated`]);
    expect(backend.events.find((event) => event.routingKey === `presence.post.o${run}.occupied`)?.body).toMatchObject({
      type: "presence.occupied",
      data: { channel: `post:o${run}` },
    });
  });

  it("removes the subscriptions of a node that dies: the survivor's subscribers are shown the count without them", async () => {
    const [n1, n2] = nodes as [PresenceGateway, PresenceGateway];
    const name = `post.g${run}`;
    const survivor = await subscriber(n2, name);
    await subscriber(n1, name);
    await waitFor(() => survivor.channel.subscriptionCount === 2, ACROSS_NODES_MS, "shown 2");
    n1.process.kill("SIGKILL");
    await waitFor(() => survivor.channel.subscriptionCount === 1, ACROSS_NODES_MS, "shown 1 after n1 died");
    expect(await countOn(n2, name)).toEqual({ occupied: true, subscription_count: 1 });
  });
});
