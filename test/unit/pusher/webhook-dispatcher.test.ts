import { PusherChannelNames } from "../../../src/adapters/pusher/channel-names.js";
import { BUILT_IN_NAMESPACES } from "../../../src/core/namespaces.js";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PusherApps } from "../../../src/adapters/pusher/apps.js";
import { WebhookBatcher } from "../../../src/adapters/pusher/webhook-batcher.js";
import { WebhookDeadReason, WebhookDispatcher } from "../../../src/adapters/pusher/webhook-dispatcher.js";
import { systemClock } from "@sobranie/protocol/runtime/clock";
import { silentLogger } from "@sobranie/protocol/runtime/logger";
import { noopMetrics, type Metrics, type WebhookOutcome } from "../../../src/core/ports/metrics.js";
import type { WebhookDelivery } from "../../../src/core/ports/webhook-queue.js";
import { FakeClock } from "../../support/fake-clock.js";
import { WebhookReceiver } from "../../support/webhook-receiver.js";

// The dispatcher over a real batcher and a real HTTP receiver on loopback;
// the dispatcher's own clock is fake, so retry windows are exact.

const RETRY = { initialDelayMs: 1_000, maxDelayMs: 8_000, giveUpAfterMs: 60_000 };
const utf8 = new TextEncoder();
const entry = (appId: string, index: number): WebhookDelivery => ({
  routingKey: `pusher.${appId}.client_event`,
  body: utf8.encode(JSON.stringify({ name: "client_event", channel: "private-chat.1", event: "client-x", data: String(index), socket_id: "1.2" })),
  retry: undefined,
});
const join = (members: number): WebhookDelivery => ({
  routingKey: "presence.room.7.join",
  body: utf8.encode(JSON.stringify({ id: "e", type: "presence.join", data: { channel: "room:7", user: "ada", members } })),
  retry: undefined,
});

describe("WebhookDispatcher", () => {
  let receiver: WebhookReceiver;
  let counts: Record<WebhookOutcome, number>;
  let clock: FakeClock;
  let batcher: WebhookBatcher;

  const dispatcher = (options: { maxEvents?: number; windowMs?: number } = {}): WebhookDispatcher => {
    const apps = new PusherApps([
      { id: "a", key: "a-key", secret: "a-secret-0123456789", enabled: true, clientEvents: true, maxConnections: undefined, signinTimeoutMs: undefined, webhooks: [{ url: receiver.url("/a"), events: ["client_event"] }] },
      {
        id: "b",
        key: "b-key",
        secret: "b-secret-0123456789",
        enabled: true,
        clientEvents: true,
        maxConnections: undefined,
        signinTimeoutMs: undefined,
        webhooks: [
          { url: receiver.url("/b-members"), events: ["member_added"] },
          { url: receiver.url("/b-occupancy"), events: ["channel_occupied"] },
        ],
      },
    ]);
    const metrics: Metrics = { ...noopMetrics, webhookEvents: (outcome, events) => void (counts[outcome] += events) };
    batcher = new WebhookBatcher({ windowMs: options.windowMs ?? 20, maxEvents: options.maxEvents ?? 100, timeoutMs: 2_000 }, { clock: systemClock });
    return new WebhookDispatcher({ apps, batcher, retry: RETRY, input: { deploymentId: undefined, channelNames: new PusherChannelNames((namespace) => BUILT_IN_NAMESPACES.find((policy) => policy.name === namespace)) }, clock, metrics, logger: silentLogger });
  };

  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
  });
  afterAll(async () => {
    await receiver.down();
  });
  afterEach(() => {
    batcher.stop();
    receiver.requests.length = 0;
    for (const path of ["/a", "/b-members", "/b-occupancy"]) receiver.answer(path, 200);
  });
  beforeEach(() => {
    counts = { delivered: 0, retried: 0, gave_up: 0, refused: 0 };
    clock = new FakeClock();
  });

  it("sends each receiver only the events its webhook subscribed to, and settles delivered ones with nothing", async () => {
    const handler = dispatcher();
    expect(await handler.handle(join(1))).toEqual([]);
    expect(receiver.delivered("/b-members").map((event) => event.name)).toEqual(["member_added"]);
    expect(receiver.delivered("/b-occupancy").map((event) => event.name)).toEqual(["channel_occupied"]);
    expect(receiver.to("/a")).toEqual([]);
  });

  it("gathers what arrives within the window into one request, and splits at maxEvents", async () => {
    const handler = dispatcher({ maxEvents: 3, windowMs: 100 });
    await Promise.all([0, 1, 2, 3, 4].map((index) => handler.handle(entry("a", index))));
    expect(receiver.to("/a").map((request) => request.events.length)).toEqual([3, 2]);
    expect(receiver.delivered("/a").map((event) => event.data)).toEqual(["0", "1", "2", "3", "4"]);
  });

  it.each([503, 500, 408, 429])("retries after %i with attempt 1, its first failure now and a delay of half to a whole first step", async (status) => {
    receiver.answer("/a", status);
    const [settlement] = await dispatcher().handle(entry("a", 0));
    expect(settlement).toMatchObject({ kind: "retry", retry: { attempt: 1, firstFailureMs: clock.now() } });
    const delayMs = settlement?.kind === "retry" ? settlement.delayMs : -1;
    expect(delayMs).toBeGreaterThanOrEqual(RETRY.initialDelayMs / 2);
    expect(delayMs).toBeLessThan(RETRY.initialDelayMs);
    expect(JSON.parse(settlement!.body)).toMatchObject({ app: "a", url: receiver.url("/a"), events: [{ name: "client_event", data: "0" }] });
    expect(counts.retried).toBe(1);
  });

  it("takes a retry back, counts its attempts on, and gives up once its first failure is older than the window", async () => {
    receiver.answer("/a", 503);
    const handler = dispatcher();
    const [first] = await handler.handle(entry("a", 0));
    if (first?.kind !== "retry") throw new Error("expected a retry");
    clock.advance(RETRY.giveUpAfterMs - 1);
    const [second] = await handler.handle({ routingKey: "pusher.a.client_event", body: utf8.encode(first.body), retry: first.retry });
    expect(second).toMatchObject({ kind: "retry", retry: { attempt: 2, firstFailureMs: first.retry.firstFailureMs } });
    clock.advance(1);
    if (second?.kind !== "retry") throw new Error("expected a retry");
    const [third] = await handler.handle({ routingKey: "pusher.a.client_event", body: utf8.encode(second.body), retry: second.retry });
    expect(third).toMatchObject({ kind: "dead-letter", reason: WebhookDeadReason.gaveUp });
    expect(receiver.to("/a", 503)).toHaveLength(3);
    expect(counts).toMatchObject({ retried: 2, gave_up: 1 });
  });

  it("dead-letters at once what the receiver refuses with another 4xx", async () => {
    receiver.answer("/a", 404);
    expect(await dispatcher().handle(entry("a", 0))).toMatchObject([{ kind: "dead-letter", reason: WebhookDeadReason.refused, message: expect.stringContaining("answered 404") }]);
    expect(counts.refused).toBe(1);
  });

  it("sends no request for fresh events while the receiver is failing: they go to the delay queue, and a retry that succeeds ends it", async () => {
    receiver.answer("/a", 503);
    const handler = dispatcher();
    const [failed] = await handler.handle(entry("a", 0));
    expect(await handler.handle(entry("a", 1))).toMatchObject([{ kind: "retry", retry: { attempt: 1 } }]);
    expect(receiver.to("/a")).toHaveLength(1);
    receiver.answer("/a", 200);
    if (failed?.kind !== "retry") throw new Error("expected a retry");
    expect(await handler.handle({ routingKey: "pusher.a.client_event", body: utf8.encode(failed.body), retry: failed.retry })).toEqual([]);
    expect(await handler.handle(entry("a", 2))).toEqual([]);
    expect(receiver.delivered("/a").map((event) => event.data)).toEqual(["0", "2"]);
  });

  it("dead-letters what asks for nothing valid: an unknown app, a bad retry body, a receiver no longer configured", async () => {
    const handler = dispatcher();
    expect(await handler.handle(entry("nope", 0))).toMatchObject([{ kind: "dead-letter", reason: WebhookDeadReason.invalid, message: "no Pusher app nope" }]);
    const retry = { attempt: 1, firstFailureMs: clock.now() };
    expect(await handler.handle({ routingKey: "pusher.a.client_event", body: utf8.encode("{}"), retry })).toMatchObject([{ kind: "dead-letter", reason: WebhookDeadReason.invalid }]);
    const gone = JSON.stringify({ app: "a", url: "http://127.0.0.1:1/gone", events: [{ name: "cache_miss", channel: "cache-post.1" }] });
    expect(await handler.handle({ routingKey: "pusher.a.cache_miss", body: utf8.encode(gone), retry })).toMatchObject([
      { kind: "dead-letter", reason: WebhookDeadReason.invalid, message: expect.stringContaining("no longer configured") },
    ]);
  });
});
