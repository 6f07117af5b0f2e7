import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestPublisher } from "../support/amqp-tools.js";
import { collect, connected, pusherAppsEnv, pusherClient, refused, subscribed } from "../support/pusher-clients.js";
import { createRabbitVhost, type RabbitVhost } from "../support/rabbit-vhost.js";
import { startTestGateway, type TestGateway } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { WebhookReceiver } from "../support/webhook-receiver.js";

// `cache-` channels (docs/pusher.md "Cache channels") with pusher-js: the
// last stored event of a durable namespace's channel replayed on subscribe,
// else `pusher:cache_miss` and its webhook. ROLE=all on its own vhost: this
// process's worker stores the events (PostgreSQL: DATABASE_URL, else embedded)
// and sends the webhooks.

const NAMESPACES = JSON.stringify([
  { name: "ticker", subscribe: "any", publish: "none", durable: true, presence: false },
  { name: "desk", subscribe: "claim", publish: "none", durable: true, presence: false },
  { name: "pulse", subscribe: "any", publish: "none", durable: false, presence: false },
]);
/** Generous (the machine is shared and loaded), and under the test timeout so a failure names what it waited for. */
const ARRIVAL_MS = 20_000;

describe("Pusher cache channels", () => {
  let vhost: RabbitVhost;
  let receiver: WebhookReceiver;
  let gateway: TestGateway;
  let publisher: TestPublisher;
  const clients: Array<{ disconnect(): void }> = [];
  const client = async () => {
    const created = pusherClient(gateway.port);
    clients.push(created);
    await connected(created);
    return created;
  };

  beforeAll(async () => {
    vhost = await createRabbitVhost("pushercache");
    receiver = await WebhookReceiver.start();
    gateway = await startTestGateway({
      RABBITMQ_URL: vhost.url,
      ROLE: "all",
      ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {}),
      NAMESPACES,
      PUSHER_APPS: pusherAppsEnv({ webhooks: [{ url: receiver.url("/hooks"), events: ["cache_miss"] }] }),
      WEBHOOK_BATCH_WAIT_MS: "20",
    });
    publisher = await TestPublisher.open(vhost.url);
  }, 120_000);
  afterAll(async () => {
    for (const created of clients) created.disconnect();
    await publisher?.close();
    await gateway?.stop();
    await receiver?.down();
    await vhost?.drop();
  });

  it("replay the channel's last stored event on subscribe, then go on live", async () => {
    // A plain subscriber sees both events live: by then the worker has stored them.
    const watcher = await client();
    const { channel: plain } = await subscribed(watcher, "ticker.t1");
    const seen = collect(plain, "price");
    await publisher.publish("ticker.t1.price", { type: "price", data: { v: 1 } });
    await publisher.publish("ticker.t1.price", { type: "price", data: { v: 2 } });
    await waitFor(() => seen.length === 2, ARRIVAL_MS, "both events live");

    const late = await client();
    const cached = late.subscribe("cache-ticker.t1");
    const replayed = collect(cached, "price");
    const misses = collect(cached, "pusher:cache_miss");
    await waitFor(() => replayed.length === 1, ARRIVAL_MS, "the replay");
    expect(replayed).toEqual([{ v: 2 }]);
    await publisher.publish("ticker.t1.price", { type: "price", data: { v: 3 } });
    await waitFor(() => replayed.length === 2, ARRIVAL_MS, "the next event live");
    expect(replayed).toEqual([{ v: 2 }, { v: 3 }]);
    expect(misses).toEqual([]);
  });

  it("on a private channel too, signed like any private channel", async () => {
    const watcher = await client();
    const { channel: plain } = await subscribed(watcher, "private-desk.d1");
    const seen = collect(plain, "note");
    await publisher.publish("desk.d1.note", { type: "note", data: "just text" });
    await waitFor(() => seen.length === 1, ARRIVAL_MS, "the event live");
    const late = await client();
    // Bound before the subscribe: the replay may come in the same read as its subscription_succeeded.
    const replayed = collect(late.subscribe("private-cache-desk.d1"), "note");
    await waitFor(() => replayed.length === 1, ARRIVAL_MS, "the replay");
    expect(replayed).toEqual(["just text"]);
  });

  it("send pusher:cache_miss and the cache_miss webhook for a channel without events", async () => {
    const pusher = await client();
    const cached = pusher.subscribe("cache-ticker.empty1");
    const misses = collect(cached, "pusher:cache_miss");
    await waitFor(() => misses.length === 1, ARRIVAL_MS, "pusher:cache_miss");
    await waitFor(() => receiver.delivered("/hooks").length >= 1, ARRIVAL_MS, "the cache_miss webhook");
    expect(receiver.delivered("/hooks")).toEqual([{ name: "cache_miss", channel: "cache-ticker.empty1" }]);
  });

  it("are refused on a live namespace, whose events are stored nowhere", async () => {
    const pusher = await client();
    const refusal = await refused(pusher, "cache-pulse.p1");
    expect(refusal).toMatchObject({ type: "SubscriptionError", status: 400 });
    expect(refusal.error).toContain('namespace "pulse" is not durable');
  });
});
