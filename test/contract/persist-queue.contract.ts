import { afterEach, describe, expect, it } from "vitest";
import { BrokerUnavailableError } from "@sobranie/protocol/errors";
import type { PersistBatchHandler, PersistMessage, PersistOutcome, PersistQueue } from "../../src/core/ports/persist-queue.js";
import { waitFor } from "../support/wait-for.js";

export interface ContractQueueOptions {
  readonly maxBatch?: number;
  readonly maxBatchWaitMs?: number;
  /** Bound on waiting for the batch in flight at stop(). */
  readonly stopTimeoutMs?: number;
}

export interface ObservedLive {
  readonly routingKey: string;
  readonly body: string;
  readonly messageId: string | undefined;
  readonly timestampMs: number | undefined;
}

export interface ObservedDeadLetter {
  readonly routingKey: string;
  readonly reason: string;
  readonly message: string;
}

/**
 * What each adapter's test file provides. One fixture is one queue: every
 * `createQueue` is a new consumer (a new worker) on that same queue, so a
 * second instance finds what a stopped one left. Retries and reconnects are
 * expected to be fast (tens of ms) so tests finish quickly.
 */
export interface PersistQueueFixture {
  /** Configured as durable for this queue. */
  readonly durableNamespace: string;
  /** Not durable: its events must never reach the queue. */
  readonly otherNamespace: string;
  createQueue(options?: ContractQueueOptions): PersistQueue;
  /** A backend publishing to the events exchange, independent of the queue under test. */
  publishEvent(routingKey: string, body: string, props?: { messageId?: string; timestampMs?: number }): Promise<void>;
  /** Everything that reached the live exchange under `durableNamespace`, in arrival order. */
  liveMessages(): Promise<ObservedLive[]>;
  /** Dead letters of this queue seen so far (in `sobranie.dead`). */
  deadLetters(): Promise<ObservedDeadLetter[]>;
  /** Stops every queue created, removes the test's broker objects. */
  cleanup(): Promise<void>;
}

export interface Received {
  readonly routingKey: string;
  readonly body: string;
  readonly messageId: string | undefined;
  readonly timestampMs: number | undefined;
  readonly redelivered: boolean;
}

const TIMEOUT_MS = 15_000;
const ORDER_COUNT = 1_000;
const ORDER_MAX_BATCH = 50;
const POISON_REASON = "contract_poison";
const decoder = new TextDecoder();

type Behaviour = (batch: readonly Received[], call: number) => Promise<PersistOutcome[]> | PersistOutcome[];

const allDone: Behaviour = (batch) => batch.map(() => ({ kind: "done" }));

/** Records every batch (copying what it keeps) and answers as `behaviour` says. */
export class RecordingBatchHandler implements PersistBatchHandler {
  readonly batches: Received[][] = [];
  /** Messages of batches that resolved, in order. */
  readonly done: Received[] = [];

  constructor(private readonly behaviour: Behaviour = allDone) {}

  async handleBatch(batch: readonly PersistMessage[]): Promise<PersistOutcome[]> {
    const received = batch.map((message) => ({
      routingKey: message.routingKey,
      body: decoder.decode(message.body),
      messageId: message.messageId,
      timestampMs: message.timestampMs,
      redelivered: message.redelivered,
    }));
    this.batches.push(received);
    const outcomes = await this.behaviour(received, this.batches.length - 1);
    this.done.push(...received);
    return outcomes;
  }

  keys(): string[] {
    return this.batches.flat().map((message) => message.routingKey);
  }

  doneKeys(): string[] {
    return this.done.map((message) => message.routingKey);
  }
}

/** A promise the test resolves by hand: holds a batch "in the store" for as long as needed. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

export function keysFor(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, index) => `${prefix}.m${index}`);
}

export function persistQueueContract(name: string, makeFixture: () => Promise<PersistQueueFixture>): void {
  describe(`PersistQueue contract: ${name}`, () => {
    let fixture: PersistQueueFixture | undefined;

    afterEach(async () => {
      await fixture?.cleanup();
      fixture = undefined;
    });

    async function setUp(): Promise<PersistQueueFixture> {
      fixture = await makeFixture();
      return fixture;
    }

    async function publishAll(f: PersistQueueFixture, keys: readonly string[]): Promise<void> {
      // In order, but without waiting for each confirm: one channel keeps publish order.
      await Promise.all(keys.map((key, index) => f.publishEvent(key, JSON.stringify({ n: index }), { messageId: key })));
    }

    it("receives events of durable namespaces only", async () => {
      const f = await setUp();
      const handler = new RecordingBatchHandler();
      await f.createQueue().start(handler);
      await f.publishEvent(`${f.otherNamespace}.1.x`, "{}");
      await f.publishEvent(`${f.durableNamespace}.1.x`, '{"a":1}', { messageId: "id-1", timestampMs: 1_700_000_000_123 });
      await waitFor(() => handler.done.length >= 1, TIMEOUT_MS, "the durable event");
      expect(handler.keys()).toEqual([`${f.durableNamespace}.1.x`]);
      expect(handler.done[0]).toEqual({
        routingKey: `${f.durableNamespace}.1.x`,
        body: '{"a":1}',
        messageId: "id-1",
        timestampMs: 1_700_000_000_123,
        redelivered: false,
      });
    });

    it(`keeps publish order across ${ORDER_COUNT} messages in batches of at most maxBatch`, async () => {
      const f = await setUp();
      const first = gate();
      // The first batch waits until everything is queued, so the rest leaves as a backlog in full batches.
      const handler = new RecordingBatchHandler(async (batch, call) => {
        if (call === 0) await first.promise;
        return allDone(batch, call);
      });
      const keys = keysFor(`${f.durableNamespace}.order`, ORDER_COUNT);
      await f.createQueue({ maxBatch: ORDER_MAX_BATCH }).start(handler);
      await publishAll(f, keys);
      first.open();
      await waitFor(() => handler.done.length >= ORDER_COUNT, TIMEOUT_MS, `${ORDER_COUNT} messages`);
      expect(handler.doneKeys()).toEqual(keys);
      const sizes = handler.batches.map((batch) => batch.length);
      expect(Math.max(...sizes)).toBe(ORDER_MAX_BATCH);
      expect(handler.batches.length).toBeLessThan(ORDER_COUNT / 2);
    });

    it("acks only after handleBatch resolves: a rejected batch comes back redelivered, in the same order", async () => {
      const f = await setUp();
      const published = gate();
      // The first batch fails only once everything is published, so later messages are already queued behind it.
      const handler = new RecordingBatchHandler(async (batch, call) => {
        if (call === 0) {
          await published.promise;
          throw new Error("store unavailable");
        }
        return allDone(batch, call);
      });
      const keys = keysFor(`${f.durableNamespace}.retry`, 50);
      await f.createQueue({ maxBatch: 10 }).start(handler);
      await publishAll(f, keys);
      published.open();
      await waitFor(() => handler.done.length >= keys.length, TIMEOUT_MS, "all messages after the retry");
      const [rejected = [], retried = []] = handler.batches;
      expect(retried.slice(0, rejected.length)).toEqual(rejected.map((message) => ({ ...message, redelivered: true })));
      expect(handler.doneKeys()).toEqual(keys);
    });

    it("dead-letters a message with its reason and finishes the rest of the batch", async () => {
      const f = await setUp();
      const handler = new RecordingBatchHandler((batch) =>
        batch.map((message): PersistOutcome =>
          message.routingKey.endsWith(".poison") ? { kind: "dead-letter", reason: POISON_REASON, message: "bad body" } : { kind: "done" },
        ),
      );
      const prefix = `${f.durableNamespace}.dl`;
      await f.createQueue().start(handler);
      await publishAll(f, [`${prefix}.a`, `${prefix}.poison`, `${prefix}.c`]);
      await waitFor(
        async () => (await f.deadLetters()).some((dead) => dead.routingKey === `${prefix}.poison`),
        TIMEOUT_MS,
        "the dead letter",
      );
      expect(await f.deadLetters()).toEqual([{ routingKey: `${prefix}.poison`, reason: POISON_REASON, message: "bad body" }]);
      // Acked, not redelivered: a marker published later arrives with nothing repeated before it.
      await f.publishEvent(`${prefix}.marker`, "{}");
      await waitFor(() => handler.doneKeys().includes(`${prefix}.marker`), TIMEOUT_MS, "the marker");
      expect(handler.doneKeys()).toEqual([`${prefix}.a`, `${prefix}.poison`, `${prefix}.c`, `${prefix}.marker`]);
    });

    it("stop() lets the batch in flight finish and ack; a new instance takes the rest", async () => {
      const f = await setUp();
      const slow = gate();
      const first = new RecordingBatchHandler(async (batch, call) => {
        if (call === 0) await slow.promise;
        return allDone(batch, call);
      });
      const keys = keysFor(`${f.durableNamespace}.finish`, 30);
      const queue = f.createQueue({ maxBatch: 10 });
      await queue.start(first);
      await publishAll(f, keys);
      await waitFor(() => first.batches.length === 1, TIMEOUT_MS, "the first batch");
      const stopped = queue.stop();
      slow.open();
      await stopped;
      expect(queue.isReady()).toBe(false);
      const finished = first.doneKeys();
      expect(finished).toEqual(keys.slice(0, finished.length));

      const second = new RecordingBatchHandler();
      await f.createQueue({ maxBatch: 10 }).start(second);
      await waitFor(() => second.done.length >= keys.length - finished.length, TIMEOUT_MS, "the rest");
      expect(second.doneKeys()).toEqual(keys.slice(finished.length));
    });

    it("stop() during a batch that outlasts the stop timeout loses nothing: a new instance gets it again", async () => {
      const f = await setUp();
      const never = gate();
      const first = new RecordingBatchHandler(async (batch, call) => {
        await never.promise;
        return allDone(batch, call);
      });
      const keys = keysFor(`${f.durableNamespace}.unfinished`, 30);
      const queue = f.createQueue({ maxBatch: 10, stopTimeoutMs: 300 });
      await queue.start(first);
      await publishAll(f, keys);
      await waitFor(() => first.batches.length === 1, TIMEOUT_MS, "the first batch");
      const unfinished = first.batches[0] ?? [];
      await queue.stop();

      const second = new RecordingBatchHandler();
      await f.createQueue({ maxBatch: 10 }).start(second);
      await waitFor(() => second.done.length >= keys.length, TIMEOUT_MS, "every message on the new instance");
      // The late result of the abandoned batch must not ack anything on the new instance.
      never.open();
      expect(second.doneKeys()).toEqual(keys);
      expect(second.done.slice(0, unfinished.length).every((message) => message.redelivered)).toBe(true);
    });

    it("publishLive reaches the live exchange with messageId and the ms timestamp; rejects once stopped", async () => {
      const f = await setUp();
      const queue = f.createQueue();
      await queue.start(new RecordingBatchHandler());
      expect(queue.isReady()).toBe(true);
      const routingKey = `${f.durableNamespace}.9.notification.created`;
      await queue.publishLive({ routingKey, body: '{"seq":1}', messageId: "live-1", timestampMs: 1_700_000_000_456 });
      await waitFor(async () => (await f.liveMessages()).length >= 1, TIMEOUT_MS, "the live message");
      expect(await f.liveMessages()).toEqual([{ routingKey, body: '{"seq":1}', messageId: "live-1", timestampMs: 1_700_000_000_456 }]);
      await queue.stop();
      await expect(queue.publishLive({ routingKey, body: "{}", messageId: "live-2", timestampMs: 1 })).rejects.toBeInstanceOf(
        BrokerUnavailableError,
      );
    });
  });
}
