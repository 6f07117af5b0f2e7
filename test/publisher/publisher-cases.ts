import amqp from "amqplib";
import { AmqpHeaders, AmqpNames } from "@sobranie/protocol/amqp";
import {
  createPublisher,
  MAX_DATA_DEPTH,
  MAX_ENVELOPE_BYTES,
  PublishAbandonedError,
  PublisherBufferFullError,
  PublisherClosedError,
  PublishValidationError,
  type Logger,
  type Publisher,
  type PublisherOptions,
} from "@sobranie/publisher";
import { TcpProxy } from "../support/tcp-proxy.js";
import { waitFor } from "../support/wait-for.js";

/**
 * The publisher SDK suite, written against the subset of the test API that
 * vitest and `bun:test` share, so one suite runs on both runtimes:
 * `publisher.node.test.ts` (vitest on Node) and `publisher.bun.ts` (`bun test`).
 * Every case talks to the real RabbitMQ; outages are a TCP relay cut.
 */
export interface Matchers {
  toBe(expected: unknown): void;
  toEqual(expected: unknown): void;
  toMatchObject(expected: object): void;
  toBeInstanceOf(expected: abstract new (...args: never[]) => unknown): void;
  toBeGreaterThan(expected: number): void;
  readonly not: Matchers;
}

export interface TestApi {
  describe(name: string, body: () => void): void;
  it(name: string, body: () => Promise<void>, timeoutMs?: number): void;
  expect(actual: unknown): Matchers;
  afterEach(body: () => Promise<void>): void;
}

const RABBITMQ_URL = process.env.RABBITMQ_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const RABBITMQ_HOST = "127.0.0.1";
const RABBITMQ_PORT = 5672;
/** Nothing listens here: a publisher pointed at it never connects. */
const UNREACHABLE_URL = "amqp://guest:guest@127.0.0.1:1";
/** Short backoff so the outage cases reconnect within a few hundred ms of `restore()`. */
const TEST_RECONNECT = { initialDelayMs: 20, maxDelayMs: 200 };
const CASE_TIMEOUT_MS = 30_000;
const DELIVERY_TIMEOUT_MS = 10_000;
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Data of `levels` nested arrays/objects, alternating: `{a: [{a: …}]}`. */
function nested(levels: number): unknown {
  let data: unknown = 1;
  for (let level = 0; level < levels; level++) data = level % 2 === 0 ? [data] : { a: data };
  return data;
}

interface Received {
  readonly routingKey: string;
  readonly body: { id: string; type: string; data: unknown; occurredAt: string };
  readonly properties: amqp.MessageProperties;
}

/** A unique channel namespace per case, with a queue bound to all of it on `sobranie.events`. */
class Tap {
  readonly received: Received[] = [];

  private constructor(
    private readonly connection: amqp.ChannelModel,
    readonly channel: amqp.Channel,
    readonly namespace: string,
    readonly queue: string,
  ) {}

  /** `consume: false` leaves the messages in the queue, for `messageCount`. */
  static async open(consume = true): Promise<Tap> {
    const connection = await amqp.connect(RABBITMQ_URL);
    const channel = await connection.createChannel();
    const namespace = `pub${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    const queue = `test.publisher.${namespace}`;
    await channel.assertExchange(AmqpNames.eventsExchange, "topic", { durable: true, autoDelete: false });
    await channel.assertQueue(queue, { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, AmqpNames.eventsExchange, `${namespace}.#`);
    const tap = new Tap(connection, channel, namespace, queue);
    if (consume) {
      await channel.consume(
        queue,
        (message) => {
          if (!message) return;
          tap.received.push({ routingKey: message.fields.routingKey, body: JSON.parse(message.content.toString("utf8")), properties: message.properties });
        },
        { noAck: true },
      );
    }
    return tap;
  }

  async messageCount(): Promise<number> {
    return (await this.channel.checkQueue(this.queue)).messageCount;
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => {});
  }
}

/** A silent logger that counts the entries with one message. */
function countingLogger(message: string): Logger & { count: number } {
  const logger = {
    count: 0,
    debug() {},
    info() {},
    warn(_fields: Record<string, unknown>, text: string) {
      if (text === message) logger.count += 1;
    },
    error() {},
    child: () => logger,
  };
  return logger;
}

/** Awaits a promise that must reject, and returns its error. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a rejection, but the promise resolved");
}

/** Settled-state of a promise, observable without awaiting it. */
function track<T>(promise: Promise<T>): { settled: boolean; promise: Promise<T> } {
  const state = { settled: false, promise };
  promise.then(
    () => (state.settled = true),
    () => (state.settled = true),
  );
  return state;
}

export function publisherCases({ describe, it, expect, afterEach }: TestApi): void {
  describe("publisher SDK", () => {
    const cleanups: Array<() => Promise<unknown>> = [];

    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    async function tap(consume = true): Promise<Tap> {
      const opened = await Tap.open(consume);
      cleanups.push(() => opened.close());
      return opened;
    }

    function publisherFor(options: Omit<PublisherOptions, "url"> & { url?: PublisherOptions["url"] } = {}): Publisher {
      const publisher = createPublisher({ url: RABBITMQ_URL, reconnect: TEST_RECONNECT, ...options });
      cleanups.push(() => publisher.close({ timeoutMs: 1_000 }));
      return publisher;
    }

    async function proxy(): Promise<TcpProxy> {
      const relay = new TcpProxy(RABBITMQ_HOST, RABBITMQ_PORT);
      await relay.start();
      cleanups.push(() => relay.stop());
      return relay;
    }

    it(
      "publishes the contract envelope to sobranie.events with routing key, message_id, timestamp and ms header",
      async () => {
        const events = await tap();
        const publisher = publisherFor({ connectionName: "sobranie-publisher-test" });
        const before = Date.now();
        const result = await publisher.publish(`${events.namespace}:7`, "message.created", { text: "hi" }, { id: "evt-1" });
        expect(result).toEqual({ id: "evt-1" });
        await waitFor(() => events.received.length === 1, DELIVERY_TIMEOUT_MS, "the event");
        const [message] = events.received;
        expect(message!.routingKey).toBe(`${events.namespace}.7.message.created`);
        expect(message!.body).toMatchObject({ id: "evt-1", type: "message.created", data: { text: "hi" } });
        const occurredMs = Date.parse(message!.body.occurredAt);
        expect(occurredMs >= before && occurredMs <= Date.now()).toBe(true);
        expect(message!.properties).toMatchObject({ messageId: "evt-1", contentType: "application/json", deliveryMode: 2 });
        const headerMs = Number(message!.properties.headers?.[AmqpHeaders.timestampMs]);
        expect(headerMs).toBe(occurredMs);
        expect(message!.properties.timestamp).toBe(Math.floor(headerMs / 1_000));
      },
      CASE_TIMEOUT_MS,
    );

    it(
      "generates time-ordered UUIDv7 ids and keeps a given occurredAt",
      async () => {
        const events = await tap();
        const publisher = publisherFor();
        const ids: string[] = [];
        for (let n = 0; n < 5; n += 1) ids.push((await publisher.publish(`${events.namespace}:1`, "tick", { n })).id);
        for (const id of ids) expect(UUID_V7.test(id)).toBe(true);
        expect([...ids].sort()).toEqual(ids);
        await publisher.publish(`${events.namespace}:1`, "tock", null, { occurredAt: new Date("2026-11-25T10:00:00Z") });
        await waitFor(() => events.received.length === 6, DELIVERY_TIMEOUT_MS, "six events");
        expect(events.received.map((message) => message.body.id).slice(0, 5)).toEqual(ids);
        expect(events.received.map((message) => message.properties.messageId).slice(0, 5)).toEqual(ids);
        expect(events.received[5]!.body).toMatchObject({ type: "tock", data: null, occurredAt: "2026-11-25T10:00:00.000Z" });
      },
      CASE_TIMEOUT_MS,
    );

    it(
      "notifyUser publishes user.<id>.notification.created, or the type given",
      async () => {
        const connection = await amqp.connect(RABBITMQ_URL);
        cleanups.push(() => connection.close().catch(() => {}));
        const channel = await connection.createChannel();
        const userId = `u${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
        const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
        await channel.bindQueue(queue, AmqpNames.eventsExchange, `user.${userId}.#`);
        const keys: string[] = [];
        await channel.consume(queue, (message) => message && keys.push(message.fields.routingKey), { noAck: true });
        const publisher = publisherFor();
        const created = await publisher.notifyUser(userId, { data: { title: "hello" }, id: "n-1" });
        expect(created).toEqual({ id: "n-1" });
        await publisher.notifyUser(userId, { type: "notification.read", data: { upTo: 3 } });
        await waitFor(() => keys.length === 2, DELIVERY_TIMEOUT_MS, "two notifications");
        expect(keys).toEqual([`user.${userId}.notification.created`, `user.${userId}.notification.read`]);
      },
      CASE_TIMEOUT_MS,
    );

    it(
      "rejects invalid events with PublishValidationError before anything is sent",
      async () => {
        const events = await tap();
        const publisher = publisherFor();
        const channel = `${events.namespace}:1`;
        const circular: Record<string, unknown> = {};
        circular.self = circular;
        const cases: Array<[Promise<unknown>, string]> = [
          [publisher.publish("post.1", "t", {}), "invalid_channel"],
          [publisher.publish("Post:1", "t", {}), "invalid_channel"],
          [publisher.publish("post:", "t", {}), "invalid_channel"],
          [publisher.publish("post:a.b", "t", {}), "invalid_channel"],
          [publisher.publish("presence:1", "t", {}), "reserved_namespace"],
          [publisher.publish(channel, "message.*", {}), "invalid_type"],
          [publisher.publish(channel, "#", {}), "invalid_type"],
          [publisher.publish(channel, "", {}), "invalid_type"],
          [publisher.publish(channel, "t", {}, { id: "x".repeat(65) }), "invalid_id"],
          [publisher.publish(channel, "t", {}, { occurredAt: "yesterday" }), "invalid_occurred_at"],
          // ISO 8601, but Date.parse cannot read it, so the gateway would dead-letter it.
          [publisher.publish(channel, "t", {}, { occurredAt: "2026-01-01T00:00:00+01" }), "invalid_occurred_at"],
          [publisher.publish(channel, "t", undefined), "missing_data"],
          [publisher.publish(channel, "t", circular), "not_serializable"],
          [publisher.publish(channel, "t", { n: 1n }), "not_serializable"],
          [publisher.publish(channel, "t", "x".repeat(MAX_ENVELOPE_BYTES)), "too_large"],
          [publisher.publish(channel, "t", nested(MAX_DATA_DEPTH + 1)), "too_deep"],
          // Deep enough to overflow JSON.stringify's stack: still reported as too deep, not as a stack overflow.
          [publisher.publish(channel, "t", nested(10_000)), "too_deep"],
        ];
        expect(publisher.pending).toBe(0);
        for (const [attempt, code] of cases) {
          const error = await rejection(attempt);
          expect(error).toBeInstanceOf(PublishValidationError);
          expect({ code: (error as PublishValidationError).code, retryable: (error as PublishValidationError).retryable }).toEqual({
            code,
            retryable: false,
          });
        }
        // A body just under the limit and data exactly at the depth limit go through; the queue then holds them and nothing else.
        await publisher.publish(channel, "t", "x".repeat(MAX_ENVELOPE_BYTES - 200), { id: "fits" });
        await publisher.publish(channel, "t", nested(MAX_DATA_DEPTH), { id: "deepest" });
        await waitFor(() => events.received.length === 2, DELIVERY_TIMEOUT_MS, "the valid events");
        expect(events.received.map((message) => message.body.id)).toEqual(["fits", "deepest"]);
      },
      CASE_TIMEOUT_MS,
    );

    it(
      "validates without a broker: errors are immediate even when it was never reachable",
      async () => {
        const publisher = publisherFor({ url: UNREACHABLE_URL });
        const error = await rejection(publisher.publish("room:1", "a.*", {}));
        expect(error).toBeInstanceOf(PublishValidationError);
        expect(publisher.connected).toBe(false);
        expect(publisher.pending).toBe(0);
      },
      CASE_TIMEOUT_MS,
    );

    it(
      "refuses bad options at creation instead of retrying them forever",
      async () => {
        for (const options of [{ url: "http://127.0.0.1:5672" }, { url: "not a url" }, { url: RABBITMQ_URL, maxBuffered: 0 }]) {
          let thrown: unknown;
          try {
            createPublisher(options);
          } catch (error) {
            thrown = error;
          }
          expect(thrown).toBeInstanceOf(TypeError);
        }
      },
      CASE_TIMEOUT_MS,
    );

    it(
      "resolves only after the broker confirmed: the event is in the queue by then, and not before the broker is reachable",
      async () => {
        const events = await tap(false);
        const relay = await proxy();
        const failedAttempts = countingLogger("publisher could not connect to the broker");
        const publisher = publisherFor({ url: `amqp://guest:guest@127.0.0.1:${relay.port}`, logger: failedAttempts });
        await publisher.publish(`${events.namespace}:1`, "first", {});
        expect(await events.messageCount()).toBe(1);
        relay.cut();
        await waitFor(() => !publisher.connected, DELIVERY_TIMEOUT_MS, "the publisher to notice the cut");
        const second = track(publisher.publish(`${events.namespace}:1`, "second", {}));
        expect(publisher.pending).toBe(1);
        // Reconnect attempts fail while the relay refuses connections; the event stays unresolved.
        await waitFor(() => failedAttempts.count >= 3, DELIVERY_TIMEOUT_MS, "three failed reconnect attempts");
        expect(second.settled).toBe(false);
        expect(await events.messageCount()).toBe(1);
        relay.restore();
        await second.promise;
        expect(await events.messageCount()).toBe(2);
      },
      CASE_TIMEOUT_MS,
    );

    it(
      "buffers publishes while the broker is away and delivers them in order after it returns",
      async () => {
        const events = await tap();
        const relay = await proxy();
        const publisher = publisherFor({ url: `amqp://guest:guest@127.0.0.1:${relay.port}` });
        const channel = `${events.namespace}:1`;
        await publisher.publish(channel, "n", { n: 0 });
        relay.cut();
        await waitFor(() => !publisher.connected, DELIVERY_TIMEOUT_MS, "the publisher to notice the cut");
        const count = 200;
        const pending = Array.from({ length: count }, (_, index) => track(publisher.publish(channel, "n", { n: index + 1 })));
        expect(publisher.pending).toBe(count);
        expect(pending.some((entry) => entry.settled)).toBe(false);
        relay.restore();
        const results = await Promise.all(pending.map((entry) => entry.promise));
        expect(new Set(results.map((result) => result.id)).size).toBe(count);
        await waitFor(() => events.received.length === count + 1, DELIVERY_TIMEOUT_MS, "every buffered event");
        expect(events.received.map((message) => (message.body.data as { n: number }).n)).toEqual(
          Array.from({ length: count + 1 }, (_, n) => n),
        );
        expect(publisher.pending).toBe(0);
      },
      CASE_TIMEOUT_MS,
    );

    it(
      "re-sends events whose connection dropped before the confirm: none lost, first copies in order",
      async () => {
        const events = await tap();
        const relay = await proxy();
        const publisher = publisherFor({ url: `amqp://guest:guest@127.0.0.1:${relay.port}` });
        const channel = `${events.namespace}:1`;
        await publisher.publish(channel, "n", { n: -1 });
        const count = 2_000;
        const pending = Array.from({ length: count }, (_, n) => publisher.publish(channel, "n", { n }));
        // Confirms arrive in order: once the 200th is in, most of the burst is written and unconfirmed.
        await pending[199];
        relay.cut();
        await waitFor(() => !publisher.connected, DELIVERY_TIMEOUT_MS, "the publisher to notice the cut");
        relay.restore();
        await Promise.all(pending);
        await waitFor(() => new Set(events.received.map((m) => m.body.id)).size === count + 1, DELIVERY_TIMEOUT_MS, "every event");
        const firstCopies: number[] = [];
        const seen = new Set<string>();
        for (const message of events.received) {
          if (seen.has(message.body.id)) continue;
          seen.add(message.body.id);
          firstCopies.push((message.body.data as { n: number }).n);
        }
        expect(firstCopies).toEqual(Array.from({ length: count + 1 }, (_, index) => index - 1));
      },
      CASE_TIMEOUT_MS,
    );

    it(
      "takes a list of broker URLs: the node it is on refuses it, it moves to the next, nothing lost, in order",
      async () => {
        const events = await tap();
        const relays = [await proxy(), await proxy()];
        const publisher = publisherFor({ url: relays.map((relay) => `amqp://guest:guest@127.0.0.1:${relay.port}`).join(",") });
        const channel = `${events.namespace}:1`;
        await publisher.publish(channel, "n", { n: 0 });
        const [active, other] = relays[0]!.connections > 0 ? [relays[0]!, relays[1]!] : [relays[1]!, relays[0]!];
        expect(active.connections).toBe(1);
        active.cut();
        const count = 100;
        await Promise.all(Array.from({ length: count }, (_, n) => publisher.publish(channel, "n", { n: n + 1 })));
        expect(other.connections).toBe(1);
        await waitFor(() => new Set(events.received.map((m) => m.body.id)).size === count + 1, DELIVERY_TIMEOUT_MS, "every event");
        expect([...new Map(events.received.map((m) => [m.body.id, (m.body.data as { n: number }).n])).values()]).toEqual(
          Array.from({ length: count + 1 }, (_, n) => n),
        );
      },
      CASE_TIMEOUT_MS,
    );

    it(
      "gives up a node that stops answering (hung) after confirmTimeoutMs and re-sends on the next: none lost",
      async () => {
        const events = await tap();
        const relays = [await proxy(), await proxy()];
        const publisher = publisherFor({ url: relays.map((relay) => `amqp://guest:guest@127.0.0.1:${relay.port}`), confirmTimeoutMs: 500 });
        const channel = `${events.namespace}:1`;
        await publisher.publish(channel, "n", { n: 0 });
        const [active, other] = relays[0]!.connections > 0 ? [relays[0]!, relays[1]!] : [relays[1]!, relays[0]!];
        // Hung, not gone: the connection stays open, nothing comes back (a new one would hang too).
        active.freeze();
        const startedMs = Date.now();
        const stuck = Array.from({ length: 20 }, (_, n) => publisher.publish(channel, "n", { n: n + 1 }));
        await Promise.all(stuck);
        // The confirm timeout, not the heartbeat (5 s + slack), ended the wait.
        expect(Date.now() - startedMs < 4_000).toBe(true);
        expect(other.connections).toBe(1);
        await waitFor(() => new Set(events.received.map((m) => m.body.id)).size === 21, DELIVERY_TIMEOUT_MS, "every event");
      },
      CASE_TIMEOUT_MS,
    );

    it(
      "rejects at once with PublisherBufferFullError when maxBuffered events are pending, and recovers",
      async () => {
        const events = await tap();
        const relay = await proxy();
        const publisher = publisherFor({ url: `amqp://guest:guest@127.0.0.1:${relay.port}`, maxBuffered: 3 });
        const channel = `${events.namespace}:1`;
        await publisher.publish(channel, "n", { n: 0 });
        relay.cut();
        await waitFor(() => !publisher.connected, DELIVERY_TIMEOUT_MS, "the publisher to notice the cut");
        const accepted = [1, 2, 3].map((n) => publisher.publish(channel, "n", { n }));
        const error = await rejection(publisher.publish(channel, "n", { n: 4 }));
        expect(error).toBeInstanceOf(PublisherBufferFullError);
        expect(error).toMatchObject({ code: "buffer_full", retryable: true, maxBuffered: 3 });
        expect(publisher.pending).toBe(3);
        relay.restore();
        await Promise.all(accepted);
        await publisher.publish(channel, "n", { n: 5 });
        await waitFor(() => events.received.length === 5, DELIVERY_TIMEOUT_MS, "five events");
        expect(events.received.map((message) => (message.body.data as { n: number }).n)).toEqual([0, 1, 2, 3, 5]);
      },
      CASE_TIMEOUT_MS,
    );

    it(
      "close() flushes what is pending, then refuses new publishes",
      async () => {
        const events = await tap();
        const publisher = createPublisher({ url: RABBITMQ_URL });
        const pending = Array.from({ length: 50 }, (_, n) => publisher.publish(`${events.namespace}:1`, "n", { n }));
        await publisher.close();
        expect((await Promise.all(pending)).length).toBe(50);
        await waitFor(() => events.received.length === 50, DELIVERY_TIMEOUT_MS, "every event");
        expect(publisher.connected).toBe(false);
        expect(await rejection(publisher.publish(`${events.namespace}:1`, "n", {}))).toBeInstanceOf(PublisherClosedError);
        await publisher.close();
      },
      CASE_TIMEOUT_MS,
    );

    it(
      "close() rejects what the broker never confirmed with PublishAbandonedError once its timeout passes",
      async () => {
        const publisher = createPublisher({ url: UNREACHABLE_URL, reconnect: TEST_RECONNECT });
        const pending = [publisher.publish("room:1", "a", { n: 1 }, { id: "lost-1" }), publisher.publish("room:1", "a", { n: 2 })];
        const outcomes = pending.map((promise) => rejection(promise));
        await publisher.close({ timeoutMs: 100 });
        const [first, second] = await Promise.all(outcomes);
        expect(first).toBeInstanceOf(PublishAbandonedError);
        expect(first).toMatchObject({ code: "publish_abandoned", retryable: true, eventId: "lost-1", maybeSent: false });
        expect(second).toBeInstanceOf(PublishAbandonedError);
        expect(publisher.pending).toBe(0);
      },
      CASE_TIMEOUT_MS,
    );
  });
}
