import amqp from "amqplib";
import Pusher from "pusher";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AmqpHeaders, AmqpNames } from "@sobranie/protocol/amqp";
import { GatewayProcess } from "../support/gateway-process.js";
import { PRESENCE_HEARTBEAT_MS, type PresenceGateway, startPresenceGateway, statusOn } from "../support/presence-gateways.js";
import { createRabbitVhost, type RabbitVhost } from "../support/rabbit-vhost.js";
import { signToken, TEST_JWT_SECRET, uniqueId } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { rawSubscribed } from "../support/pusher-clients.js";
import { HANG, WebhookReceiver } from "../support/webhook-receiver.js";
import { TestClient } from "../support/ws-client.js";

// Pusher webhooks (docs/pusher.md "Webhooks") end to end: two gateway
// processes publish presence changes, worker processes send them to a real
// HTTP receiver, and the real `pusher` SDK checks every signature. Retry
// timings are small (env), never asserted; every wait is for a condition.

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
/** Generous: the machine is shared and loaded. */
const ARRIVAL_MS = 30_000;

interface App {
  readonly id: string;
  readonly key: string;
  readonly secret: string;
}
const app = (id: string): App => ({ id, key: `${id}-key`, secret: `${id}-secret-0123456789` });
const APPS = { main: app("main"), flaky: app("flaky"), offline: app("offline"), refuse: app("refuse"), restart: app("restart"), dead: app("dead"), slow: app("slow") };

interface DeadLetter {
  readonly routingKey: string;
  readonly reason: unknown;
  readonly body: { app?: string; events?: Array<Record<string, unknown>> };
}

describe("Pusher webhooks from worker processes on RabbitMQ", () => {
  let vhost: RabbitVhost;
  let receiver: WebhookReceiver;
  /** A second receiver, down at first: its requests are refused connections. */
  let offlineReceiver: WebhookReceiver;
  let nodes: PresenceGateway[] = [];
  let workers: GatewayProcess[] = [];
  let broker: amqp.ChannelModel;
  let publisher: amqp.ConfirmChannel;
  const deadLetters: DeadLetter[] = [];
  const clients: TestClient[] = [];
  let pinger: NodeJS.Timeout | undefined;
  const run = uniqueId("wh").slice(3).replace(/[^A-Za-z0-9]/g, "");

  const pusherApps = (): string =>
    JSON.stringify([
      { ...APPS.main, webhooks: [{ url: receiver.url("/main") }] },
      ...(["flaky", "refuse", "restart", "dead", "slow"] as const).map((name) => ({ ...APPS[name], webhooks: [{ url: receiver.url(`/${name}`), events: ["client_event"] }] })),
      { ...APPS.offline, webhooks: [{ url: offlineReceiver.url("/offline"), events: ["client_event"] }] },
    ]);

  /** A worker process; `giveUpAfterMs` is its retry window. */
  const startWorker = async (name: string, giveUpAfterMs: number): Promise<GatewayProcess> => {
    const worker = GatewayProcess.start([], {
      PORT: "0",
      HOST: "127.0.0.1",
      ROLE: "worker",
      NODE_ID: `${name}-${run}`,
      RABBITMQ_URL: vhost.url,
      DATABASE_URL,
      JWT_SECRET: TEST_JWT_SECRET,
      LOG_LEVEL: "info",
      PUSHER_APPS: pusherApps(),
      WEBHOOK_TIMEOUT_MS: "2000",
      WEBHOOK_BATCH_WAIT_MS: "300",
      WEBHOOK_BATCH_MAX_EVENTS: "10",
      WEBHOOK_RETRY_INITIAL_MS: "100",
      WEBHOOK_RETRY_MAX_DELAY_MS: "800",
      WEBHOOK_GIVE_UP_AFTER_MS: String(giveUpAfterMs),
    });
    await worker.waitForOutput(/"msg":"ready"/);
    return worker;
  };

  const metric = async (worker: GatewayProcess, outcome: string): Promise<number> => {
    const port = await worker.listeningPort();
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const line = text.split("\n").find((row) => row.startsWith("sobranie_webhook_events_total{") && row.includes(`outcome="${outcome}"`));
    return line === undefined ? 0 : Number(line.split(" ").at(-1));
  };

  /** Publishes one webhook event through the Pusher side's entry point, `pusher.<appId>.<name>`. */
  const publishEntry = async (appId: string, event: Record<string, unknown>): Promise<void> => {
    publisher.publish(AmqpNames.eventsExchange, `pusher.${appId}.${String(event.name)}`, Buffer.from(JSON.stringify(event)), { persistent: true, contentType: "application/json" });
    await publisher.waitForConfirms();
  };
  const clientEvent = (channel: string, index: number) => ({ name: "client_event", channel, event: "client-typing", data: JSON.stringify({ index }), socket_id: "123.456" });

  const joinPresence = async (node: PresenceGateway, user: string, channel: string): Promise<TestClient> => {
    const client = await TestClient.connect(node.wsUrl, { token: await signToken({ sub: user, channels: ["room:*"] }) });
    clients.push(client);
    expect(await client.request({ op: "subscribe", channel, presence: true })).toMatchObject({ op: "ok" });
    return client;
  };

  beforeAll(async () => {
    vhost = await createRabbitVhost("pusherhooks");
    receiver = await WebhookReceiver.start();
    offlineReceiver = await WebhookReceiver.start();
    await offlineReceiver.down();
    nodes = await Promise.all(["n1", "n2"].map((name) => startPresenceGateway(`${name}-${run}`, vhost.url, undefined, { PUSHER_APPS: pusherApps() })));
    // Two workers compete for the webhook queue: each change must still be sent once.
    workers = await Promise.all(["w1", "w2"].map((name) => startWorker(name, 120_000)));
    broker = await amqp.connect(vhost.url);
    publisher = await broker.createConfirmChannel();
    const dead = await broker.createChannel();
    await dead.consume(
      AmqpNames.deadQueue,
      (message) => {
        if (!message) return;
        let body: DeadLetter["body"] = {};
        try {
          body = JSON.parse(message.content.toString()) as DeadLetter["body"];
        } catch {
          // Not ours (no webhook dead letter is anything but JSON): kept with an empty body.
        }
        deadLetters.push({ routingKey: message.fields.routingKey, reason: message.properties.headers?.[AmqpHeaders.deadReason], body });
      },
      { noAck: true },
    );
    pinger = setInterval(() => {
      for (const client of clients) if (client.socket.readyState === client.socket.OPEN) client.socket.ping();
    }, PRESENCE_HEARTBEAT_MS);
    await waitFor(async () => {
      const probe = await TestClient.connect(nodes[0]!.wsUrl, { token: await signToken({ sub: "probe" }) });
      const seen = await Promise.all(nodes.map((node) => statusOn(node, "probe")));
      probe.close();
      return seen.every(Boolean);
    }, ARRIVAL_MS, "nodes see each other");
  }, 180_000);

  afterAll(async () => {
    if (pinger) clearInterval(pinger);
    for (const client of clients) client.close();
    await broker?.close().catch(() => {});
    await GatewayProcess.killAll();
    await receiver?.down();
    await offlineReceiver?.down();
    await vhost?.drop();
  });

  it("sends channel_occupied, member_added, member_removed and channel_vacated once each for members on two gateways, signed so the pusher SDK accepts them", async () => {
    const channel = `room:w${run}`;
    const pusherName = `presence-room.w${run}`;
    const seen = () => receiver.delivered("/main").filter((event) => event.channel === pusherName).map((event) => [event.name, event.user_id]);
    const ada = await joinPresence(nodes[0]!, "ada", channel);
    await waitFor(() => seen().length >= 2, ARRIVAL_MS, "first join");
    const grace = await joinPresence(nodes[1]!, "grace", channel);
    await waitFor(() => seen().length >= 3, ARRIVAL_MS, "second join");
    ada.close();
    await waitFor(() => seen().length >= 4, ARRIVAL_MS, "first leave");
    grace.close();
    await waitFor(() => seen().length >= 6, ARRIVAL_MS, "last leave");
    expect(seen()).toEqual([
      ["channel_occupied", undefined],
      ["member_added", "ada"],
      ["member_added", "grace"],
      ["member_removed", "ada"],
      ["member_removed", "grace"],
      ["channel_vacated", undefined],
    ]);

    const sdk = new Pusher({ appId: APPS.main.id, key: APPS.main.key, secret: APPS.main.secret, cluster: "mt1" });
    const impostor = new Pusher({ appId: APPS.main.id, key: APPS.main.key, secret: "another-secret-0123456789", cluster: "mt1" });
    const requests = receiver.to("/main", 200).filter((request) => request.rawBody.includes(pusherName));
    for (const request of requests) {
      const webhook = sdk.webhook({ headers: request.headers as Record<string, string>, rawBody: request.rawBody });
      expect(webhook.isValid()).toBe(true);
      expect(typeof webhook.getTime().getTime()).toBe("number");
      expect(impostor.webhook({ headers: request.headers as Record<string, string>, rawBody: request.rawBody }).isValid()).toBe(false);
    }
    expect(requests[0]!.headers["x-pusher-key"]).toBe(APPS.main.key);
  });

  it("sends channel_occupied and channel_vacated once each for Pusher subscribers of a public channel on two gateways", async () => {
    const pusherName = `post.w${run}`;
    const seen = () => receiver.delivered("/main").filter((event) => event.channel === pusherName).map((event) => event.name);
    const first = await rawSubscribed(nodes[0]!.port, pusherName, { app: APPS.main });
    const second = await rawSubscribed(nodes[1]!.port, pusherName, { app: APPS.main });
    const subscriptions = async (node: PresenceGateway): Promise<number> => {
      const rest = new Pusher({ appId: APPS.main.id, key: APPS.main.key, secret: APPS.main.secret, host: "127.0.0.1", port: String(node.port), useTLS: false });
      const answer = await rest.get({ path: `/channels/${pusherName}`, params: { info: "subscription_count" } });
      return ((await answer.json()) as { subscription_count: number }).subscription_count;
    };
    const onBoth = async (count: number): Promise<boolean> => (await subscriptions(nodes[0]!)) === count && (await subscriptions(nodes[1]!)) === count;
    // Both subscriptions known on both nodes before they leave: the publishing node decides in the order changes reach it.
    await waitFor(() => onBoth(2), ARRIVAL_MS, "both subscriptions on both nodes");
    await waitFor(() => seen().length >= 1, ARRIVAL_MS, "occupied");
    first.socket.close();
    second.socket.close();
    await waitFor(() => seen().length >= 2, ARRIVAL_MS, "vacated");
    // Both nodes count no subscription: no change is left to send.
    await waitFor(() => onBoth(0), ARRIVAL_MS, "vacant on both nodes");
    expect(seen()).toEqual(["channel_occupied", "channel_vacated"]);
  });

  it("batches events of the entry point per receiver, at most WEBHOOK_BATCH_MAX_EVENTS a request, each event once", async () => {
    const channel = `private-chat.b${run}`;
    for (let index = 0; index < 25; index++) {
      publisher.publish(AmqpNames.eventsExchange, "pusher.main.client_event", Buffer.from(JSON.stringify(clientEvent(channel, index))), { persistent: true });
    }
    await publisher.waitForConfirms();
    const indexes = () => receiver.delivered("/main").filter((event) => event.channel === channel).map((event) => (JSON.parse(String(event.data)) as { index: number }).index);
    await waitFor(() => indexes().length >= 25, ARRIVAL_MS, "25 client events");
    expect(indexes().sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, index) => index));
    const sizes = receiver.to("/main", 200).filter((request) => request.rawBody.includes(channel)).map((request) => request.events.length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(10);
    expect(sizes.length).toBeLessThan(25);
  });

  it("retries through a receiver answering 503 and delivers each event once when it recovers", async () => {
    const channel = `private-chat.f${run}`;
    receiver.answer("/flaky", 503);
    for (let index = 0; index < 3; index++) await publishEntry(APPS.flaky.id, clientEvent(channel, index));
    await waitFor(() => receiver.to("/flaky", 503).length >= 3, ARRIVAL_MS, "failed attempts");
    receiver.answer("/flaky", 200);
    await waitFor(() => receiver.delivered("/flaky").length >= 3, ARRIVAL_MS, "delivery after the outage");
    await publishEntry(APPS.flaky.id, clientEvent(channel, 99));
    await waitFor(() => receiver.delivered("/flaky").length >= 4, ARRIVAL_MS, "a later event");
    expect(receiver.delivered("/flaky").map((event) => (JSON.parse(String(event.data)) as { index: number }).index).sort((a, b) => a - b)).toEqual([0, 1, 2, 99]);
  });

  it("retries while the receiver refuses connections and delivers once it listens", async () => {
    const channel = `private-chat.o${run}`;
    const retriedBefore = (await Promise.all(workers.map((worker) => metric(worker, "retried")))).reduce((a, b) => a + b, 0);
    for (let index = 0; index < 2; index++) await publishEntry(APPS.offline.id, clientEvent(channel, index));
    await waitFor(
      async () => (await Promise.all(workers.map((worker) => metric(worker, "retried")))).reduce((a, b) => a + b, 0) >= retriedBefore + 4,
      ARRIVAL_MS,
      "retries counted",
    );
    await offlineReceiver.up();
    await waitFor(() => offlineReceiver.delivered("/offline").length >= 2, ARRIVAL_MS, "delivery once listening");
    expect(offlineReceiver.delivered("/offline").map((event) => event.channel)).toEqual([channel, channel]);
  });

  it("dead-letters at once what the receiver refuses with a 4xx, and what the entry point cannot use", async () => {
    const channel = `private-chat.r${run}`;
    receiver.answer("/refuse", 400);
    await publishEntry(APPS.refuse.id, clientEvent(channel, 0));
    await publishEntry(APPS.main.id, { name: "client_event", channel });
    await waitFor(() => deadLetters.some((letter) => letter.reason === "webhook_refused" && letter.body.app === APPS.refuse.id), ARRIVAL_MS, "refused dead letter");
    await waitFor(() => deadLetters.some((letter) => letter.reason === "webhook_invalid" && letter.routingKey === "pusher.main.client_event"), ARRIVAL_MS, "invalid dead letter");
    expect(receiver.to("/refuse")).toHaveLength(1);
    expect(deadLetters.find((letter) => letter.reason === "webhook_refused")!.body.events).toEqual([clientEvent(channel, 0)]);
    expect((await Promise.all(workers.map((worker) => metric(worker, "refused")))).reduce((a, b) => a + b, 0)).toBe(1);
  });

  it("times out a receiver that does not answer, without holding up another app's webhooks", async () => {
    const channel = `private-chat.t${run}`;
    receiver.answer("/slow", HANG);
    await publishEntry(APPS.slow.id, clientEvent(channel, 0));
    await waitFor(() => receiver.to("/slow").length >= 1, ARRIVAL_MS, "a hanging request");
    await publishEntry(APPS.main.id, clientEvent(channel, 1));
    await waitFor(() => receiver.delivered("/main").some((event) => event.channel === channel), ARRIVAL_MS, "the other app's event");
    // The hanging request has not been answered, yet the other app's was delivered.
    expect(receiver.delivered("/slow")).toEqual([]);
    await waitFor(() => receiver.to("/slow").length >= 2, ARRIVAL_MS, "a retry after the timeout");
    receiver.answer("/slow", 200);
    await waitFor(() => receiver.delivered("/slow").length >= 1, ARRIVAL_MS, "delivery once it answers");
    expect(receiver.delivered("/slow")).toEqual([clientEvent(channel, 0)]);
  });

  it("keeps retries in RabbitMQ across a restart of every worker, then delivers them", async () => {
    const channel = `private-chat.s${run}`;
    receiver.answer("/restart", 503);
    await publishEntry(APPS.restart.id, clientEvent(channel, 0));
    await waitFor(() => receiver.to("/restart", 503).length >= 1, ARRIVAL_MS, "a failed attempt");
    for (const worker of workers) worker.kill("SIGTERM");
    await Promise.all(workers.map((worker) => worker.exited));
    receiver.answer("/restart", 200);
    // The worker after the restart has a short retry window, for the give-up test below.
    workers = [await startWorker("w3", 2_000)];
    await waitFor(() => receiver.delivered("/restart").length >= 1, ARRIVAL_MS, "delivery after the restart");
    expect(receiver.delivered("/restart")).toEqual([clientEvent(channel, 0)]);
  }, 120_000);

  it("gives up after the retry window: dead-lettered with its reason and counted", async () => {
    const channel = `private-chat.d${run}`;
    receiver.answer("/dead", 503);
    await publishEntry(APPS.dead.id, clientEvent(channel, 0));
    await waitFor(() => deadLetters.some((letter) => letter.reason === "webhook_gave_up" && letter.body.app === APPS.dead.id), ARRIVAL_MS, "gave-up dead letter");
    expect(receiver.to("/dead", 503).length).toBeGreaterThanOrEqual(2);
    expect(deadLetters.find((letter) => letter.reason === "webhook_gave_up")!.body.events).toEqual([clientEvent(channel, 0)]);
    expect(await metric(workers[0]!, "gave_up")).toBe(1);
    expect(receiver.delivered("/dead")).toEqual([]);
  }, 60_000);
});
