import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { type Broker, type BrokerHandler, type DeliveryOutcome, type LiveDelivery } from "../../src/core/ports/broker.js";
import { BrokerUnavailableError } from "@sobranie/protocol/errors";
import { waitFor } from "../support/wait-for.js";

/** Namespaces the fixtures configure as live (non-durable); `user` stays durable. */
export const CONTRACT_LIVE_NAMESPACES = ["post", "status"] as const;

export interface RawProperties {
  readonly messageId?: string;
  readonly timestampMs?: number;
}

/**
 * What each adapter's test file provides. `publishRaw` plays a backend (or
 * another gateway) publishing independently of the broker under test;
 * `simulateOutage` cuts this node off until `restore`.
 */
export interface BrokerFixture {
  readonly broker: Broker;
  publishRaw(exchange: "events" | "live" | "control", routingKey: string, body: Buffer | string, props?: RawProperties): Promise<void>;
  simulateOutage(): Promise<void>;
  restore(): Promise<void>;
  deadLetters(): Promise<Array<{ routingKey: string; reason: string }>>;
  /** Prefixes bound for this node on the live exchange, as the broker itself reports them. */
  serverBindings(): Promise<string[]>;
  cleanup(): Promise<void>;
}

const DEAD_LETTER_REASON = "contract_poison";
const DELIVERY_TIMEOUT_MS = 10_000;
const IN_ORDER_COUNT = 1_000;
const CONCURRENT_BINDS = 500;
const SEQUENTIAL_BINDS = 20;

interface Received {
  readonly routingKey: string;
  readonly body: string;
  readonly messageId: string | undefined;
  readonly timestampMs: number | undefined;
}

/** Records deliveries (copying the body: it is only valid during the call) and readiness changes. */
class RecordingHandler implements BrokerHandler {
  readonly received: Received[] = [];
  /** Bodies of control messages, in arrival order. */
  readonly control: string[] = [];
  readonly readiness: boolean[] = [];
  private readonly decoder = new TextDecoder();

  handleDelivery(delivery: LiveDelivery): DeliveryOutcome {
    this.received.push({
      routingKey: delivery.routingKey,
      body: this.decoder.decode(delivery.body),
      messageId: delivery.messageId,
      timestampMs: delivery.timestampMs,
    });
    if (delivery.routingKey.endsWith(".poison")) return { kind: "dead-letter", reason: DEAD_LETTER_REASON, message: "test poison" };
    if (delivery.routingKey.endsWith(".throws")) throw new Error("handler blew up");
    return { kind: "delivered" };
  }

  handleControl(delivery: LiveDelivery): DeliveryOutcome {
    const body = this.decoder.decode(delivery.body);
    this.control.push(body);
    return body.startsWith("poison") ? { kind: "dead-letter", reason: DEAD_LETTER_REASON, message: "test poison" } : { kind: "delivered" };
  }

  readinessChanged(ready: boolean): void {
    this.readiness.push(ready);
  }

  has(routingKey: string): boolean {
    return this.received.some((message) => message.routingKey === routingKey);
  }

  keys(): string[] {
    return this.received.map((message) => message.routingKey);
  }
}

/** A channel id unique to this test run, so parallel test files never see each other's traffic. */
function uniquePrefix(namespace: string): string {
  return `${namespace}.t${randomUUID().replaceAll("-", "").slice(0, 12)}`;
}

export function brokerContract(name: string, makeBroker: () => Promise<BrokerFixture>): void {
  describe(`Broker contract: ${name}`, () => {
    let fixture: BrokerFixture | undefined;

    afterEach(async () => {
      await fixture?.cleanup();
      fixture = undefined;
    });

    async function started(): Promise<{ fixture: BrokerFixture; broker: Broker; handler: RecordingHandler }> {
      fixture = await makeBroker();
      const handler = new RecordingHandler();
      await fixture.broker.start(handler);
      return { fixture, broker: fixture.broker, handler };
    }

    function delivered(handler: RecordingHandler, routingKey: string): Promise<void> {
      return waitFor(() => handler.has(routingKey), DELIVERY_TIMEOUT_MS, `delivery of ${routingKey}`);
    }

    it("is ready after start and delivers a live message to a bound prefix", async () => {
      const { fixture, broker, handler } = await started();
      // start() resolves once both directions are up, whatever connections they use.
      expect(broker.isReady()).toBe(true);
      expect(broker.canPublish()).toBe(true);
      expect(handler.readiness).toEqual([true]);
      const prefix = uniquePrefix("post");
      await broker.bind(prefix);
      await fixture.publishRaw("live", `${prefix}.created`, '{"n":1}', { messageId: "m-1", timestampMs: 1_700_000_000_123 });
      await delivered(handler, `${prefix}.created`);
      expect(handler.received[0]).toMatchObject({ body: '{"n":1}', messageId: "m-1" });
    });

    it("hands every control message to handleControl, with nothing bound, dead-lettering on its say-so", async () => {
      const { fixture, broker, handler } = await started();
      // The control exchange is shared by everything on the vhost: only this test's own messages are looked at.
      const marker = randomUUID();
      const poison = `poison-${marker}`;
      await fixture.publishRaw("control", "disconnect", poison);
      await broker.publish({ target: "control", routingKey: "revoke", body: marker, messageId: marker, timestampMs: Date.now() });
      await waitFor(() => handler.control.includes(marker), DELIVERY_TIMEOUT_MS, "the control message");
      expect(handler.control.filter((body) => body.includes(marker))).toEqual([poison, marker]);
      expect(handler.received).toEqual([]);
      await waitFor(async () => (await fixture.deadLetters()).length === 1, DELIVERY_TIMEOUT_MS, "the dead control message");
      expect((await fixture.deadLetters())[0]).toMatchObject({ reason: DEAD_LETTER_REASON });
    });

    it("does not deliver to a prefix that is not bound", async () => {
      const { fixture, broker, handler } = await started();
      const bound = uniquePrefix("post");
      const other = uniquePrefix("post");
      await broker.bind(bound);
      await fixture.publishRaw("live", `${other}.created`, "{}");
      await fixture.publishRaw("live", `${bound}.marker`, "{}");
      await delivered(handler, `${bound}.marker`);
      expect(handler.keys()).toEqual([`${bound}.marker`]);
    });

    it("forwards events of a live namespace to live, but not those of a durable namespace", async () => {
      const { fixture, broker, handler } = await started();
      const live = uniquePrefix("post");
      const durable = uniquePrefix("user");
      await Promise.all([broker.bind(live), broker.bind(durable)]);
      await fixture.publishRaw("events", `${durable}.notification.created`, "{}");
      await fixture.publishRaw("events", `${live}.comment.created`, "{}");
      await delivered(handler, `${live}.comment.created`);
      expect(handler.keys()).toEqual([`${live}.comment.created`]);
    });

    it("stops delivering after unbind", async () => {
      const { fixture, broker, handler } = await started();
      const gone = uniquePrefix("post");
      const kept = uniquePrefix("post");
      await Promise.all([broker.bind(gone), broker.bind(kept)]);
      await fixture.publishRaw("live", `${gone}.first`, "{}");
      await delivered(handler, `${gone}.first`);
      await broker.unbind(gone);
      await fixture.publishRaw("live", `${gone}.second`, "{}");
      await fixture.publishRaw("live", `${kept}.marker`, "{}");
      await delivered(handler, `${kept}.marker`);
      expect(handler.keys()).toEqual([`${gone}.first`, `${kept}.marker`]);
    });

    it("resolves publishes after the confirm and delivers 1,000 of them in order", async () => {
      const { broker, handler } = await started();
      const prefix = uniquePrefix("post");
      await broker.bind(prefix);
      const timestampMs = Date.now();
      await Promise.all(
        Array.from({ length: IN_ORDER_COUNT }, (_, index) =>
          broker.publish({ target: "live", routingKey: `${prefix}.n`, body: JSON.stringify({ index }), messageId: `id-${index}`, timestampMs }),
        ),
      );
      await waitFor(() => handler.received.length === IN_ORDER_COUNT, DELIVERY_TIMEOUT_MS, `${IN_ORDER_COUNT} deliveries`);
      expect(handler.received.map((message) => (JSON.parse(message.body) as { index: number }).index)).toEqual(
        Array.from({ length: IN_ORDER_COUNT }, (_, index) => index),
      );
      expect(handler.received[0]).toMatchObject({ messageId: "id-0", timestampMs });
    });

    it("dead-letters on the handler's say-so (and on a throw) and still delivers the next message", async () => {
      const { fixture, broker, handler } = await started();
      const prefix = uniquePrefix("post");
      await broker.bind(prefix);
      await fixture.publishRaw("live", `${prefix}.poison`, "not json");
      await fixture.publishRaw("live", `${prefix}.throws`, "{}");
      await fixture.publishRaw("live", `${prefix}.valid`, "{}");
      await delivered(handler, `${prefix}.valid`);
      const expected = [
        { routingKey: `${prefix}.poison`, reason: DEAD_LETTER_REASON },
        { routingKey: `${prefix}.throws`, reason: "internal" },
      ];
      let dead: Array<{ routingKey: string; reason: string }> = [];
      await waitFor(
        async () => {
          dead = await fixture.deadLetters();
          return dead.length >= expected.length;
        },
        DELIVERY_TIMEOUT_MS,
        "two dead letters",
      );
      expect(dead.map(({ routingKey, reason }) => ({ routingKey, reason }))).toEqual(expected);
      // Each was settled once: neither came back (a requeue would redeliver it).
      expect(handler.keys()).toEqual([`${prefix}.poison`, `${prefix}.throws`, `${prefix}.valid`]);
    });

    it("resolves bind only once the binding is effective", async () => {
      const { fixture, broker, handler } = await started();
      const prefixes = Array.from({ length: SEQUENTIAL_BINDS }, () => uniquePrefix("post"));
      for (const prefix of prefixes) {
        await broker.bind(prefix);
        await fixture.publishRaw("live", `${prefix}.right-after-bind`, "{}");
      }
      await waitFor(() => handler.received.length === SEQUENTIAL_BINDS, DELIVERY_TIMEOUT_MS, "one delivery per bind");
      expect(handler.keys()).toEqual(prefixes.map((prefix) => `${prefix}.right-after-bind`));
    });

    it("completes 500 concurrent binds, each of them effective", async () => {
      const { fixture, broker, handler } = await started();
      const prefixes = Array.from({ length: CONCURRENT_BINDS }, () => uniquePrefix("post"));
      await Promise.all(prefixes.map((prefix) => broker.bind(prefix)));
      await Promise.all(prefixes.map((prefix) => fixture.publishRaw("live", `${prefix}.hello`, "{}")));
      await waitFor(() => handler.received.length === CONCURRENT_BINDS, DELIVERY_TIMEOUT_MS, "a delivery per prefix");
      expect(new Set(handler.keys())).toEqual(new Set(prefixes.map((prefix) => `${prefix}.hello`)));
    });

    it("rejects publishes with BrokerUnavailableError during an outage", async () => {
      const { fixture, broker, handler } = await started();
      await fixture.simulateOutage();
      // An adapter with a publish connection of its own notices its loss on its own: publishes are refused from then on.
      await waitFor(() => !broker.isReady() && !broker.canPublish(), DELIVERY_TIMEOUT_MS, "neither ready nor publishing");
      expect(handler.readiness).toEqual([true, false]);
      await expect(
        broker.publish({ target: "live", routingKey: "post.x.y", body: "{}", messageId: "m", timestampMs: Date.now() }),
      ).rejects.toBeInstanceOf(BrokerUnavailableError);
      await fixture.restore();
    });

    it("reconnects by itself after an outage, restores its bindings and delivers again", async () => {
      const { fixture, broker, handler } = await started();
      const kept = uniquePrefix("post");
      const droppedDuringOutage = uniquePrefix("post");
      const addedDuringOutage = uniquePrefix("post");
      await Promise.all([broker.bind(kept), broker.bind(droppedDuringOutage)]);

      await fixture.simulateOutage();
      await waitFor(() => !broker.isReady(), DELIVERY_TIMEOUT_MS, "not ready after the outage");
      await broker.unbind(droppedDuringOutage);
      let addedResolved = false;
      const added = broker.bind(addedDuringOutage).then(() => {
        addedResolved = true;
      });
      expect(addedResolved).toBe(false);

      await fixture.restore();
      await added;
      // The publish side may come back after readiness (its own backoff); the publish below needs it.
      await waitFor(() => broker.isReady() && broker.canPublish(), DELIVERY_TIMEOUT_MS, "ready and publishing again");
      expect(handler.readiness).toEqual([true, false, true]);
      expect((await fixture.serverBindings()).sort()).toEqual([kept, addedDuringOutage].sort());

      await fixture.publishRaw("live", `${droppedDuringOutage}.after`, "{}");
      await fixture.publishRaw("live", `${kept}.after`, "{}");
      await fixture.publishRaw("live", `${addedDuringOutage}.after`, "{}");
      await delivered(handler, `${addedDuringOutage}.after`);
      expect(handler.keys()).toEqual([`${kept}.after`, `${addedDuringOutage}.after`]);
      await broker.publish({ target: "live", routingKey: `${kept}.own`, body: "{}", messageId: "m", timestampMs: Date.now() });
      await delivered(handler, `${kept}.own`);
    });

    it("stop() is idempotent, removes this node's bindings and leaves the broker unavailable", async () => {
      const { fixture, broker, handler } = await started();
      const prefixes = [uniquePrefix("post"), uniquePrefix("post")];
      await Promise.all(prefixes.map((prefix) => broker.bind(prefix)));
      expect((await fixture.serverBindings()).sort()).toEqual([...prefixes].sort());

      await Promise.all([broker.stop(), broker.stop()]);
      await broker.stop();
      expect(broker.isReady()).toBe(false);
      expect(broker.canPublish()).toBe(false);
      expect(handler.readiness).toEqual([true, false]);
      expect(await fixture.serverBindings()).toEqual([]);
      await expect(
        broker.publish({ target: "live", routingKey: "post.x.y", body: "{}", messageId: "m", timestampMs: Date.now() }),
      ).rejects.toBeInstanceOf(BrokerUnavailableError);
    });
  });
}
