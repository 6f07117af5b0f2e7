import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import amqp from "amqplib";
import { afterEach, describe, expect, it } from "vitest";
import { AmqpPersistQueue } from "../../src/adapters/amqp/amqp-persist-queue.js";
import { AmqpHeaders, AmqpNames } from "@sobranie/protocol/amqp";
import { workerConnectionName } from "../../src/adapters/amqp/topology.js";
import { silentLogger } from "@sobranie/protocol/runtime/logger";
import {
  type ContractQueueOptions,
  gate,
  keysFor,
  type ObservedDeadLetter,
  type ObservedLive,
  type PersistQueueFixture,
  persistQueueContract,
  RecordingBatchHandler,
} from "../contract/persist-queue.contract.js";
import { waitFor } from "../support/wait-for.js";

const RABBITMQ_URL = process.env.RABBITMQ_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const FAST = { initialDelayMs: 20, maxDelayMs: 200 };
const TIMEOUT_MS = 15_000;
const run = promisify(execFile);

function suffix(): string {
  return randomUUID().replaceAll("-", "").slice(0, 10);
}

/**
 * One fixture = one quorum queue with a unique name and a unique durable
 * namespace, so parallel test files (sharing `sobranie.events`) never see each
 * other's events and nothing lands in a real `sobranie.persist`.
 */
async function makeFixture(): Promise<PersistQueueFixture & { queueName: string; queue(options?: ContractQueueOptions & { nodeId?: string }): AmqpPersistQueue }> {
  const id = suffix();
  const durableNamespace = `u${id}`;
  const queueName = `sobranie.persist.test-${id}`;
  const connection = await amqp.connect(RABBITMQ_URL);
  connection.on("error", () => {});
  const publish = await connection.createConfirmChannel();
  const admin = await connection.createChannel();
  // The live exchange as a gateway sees it; asserted by the queue under test too.
  await admin.assertExchange(AmqpNames.liveExchange, "topic", { durable: true });
  const liveQueue = (await admin.assertQueue("", { exclusive: true, autoDelete: true })).queue;
  await admin.bindQueue(liveQueue, AmqpNames.liveExchange, `${durableNamespace}.#`);
  const live: ObservedLive[] = [];
  await admin.consume(
    liveQueue,
    (message) => {
      if (!message) return;
      const ms: unknown = message.properties.headers?.[AmqpHeaders.timestampMs];
      live.push({
        routingKey: message.fields.routingKey,
        body: message.content.toString("utf8"),
        messageId: message.properties.messageId,
        timestampMs: typeof ms === "number" ? ms : undefined,
      });
    },
    { noAck: true },
  );
  const dead: ObservedDeadLetter[] = [];
  const queues: AmqpPersistQueue[] = [];

  const queue = (options: ContractQueueOptions & { nodeId?: string } = {}): AmqpPersistQueue => {
    const created = new AmqpPersistQueue({
      urls: [RABBITMQ_URL],
      nodeId: options.nodeId ?? `persist-${suffix()}`,
      durableNamespaces: [durableNamespace],
      logger: silentLogger,
      queueName,
      reconnect: FAST,
      retryBackoff: FAST,
      ...options,
    });
    queues.push(created);
    return created;
  };

  return {
    durableNamespace,
    otherNamespace: `p${id}`,
    queueName,
    queue,
    createQueue: queue,
    async publishEvent(routingKey, body, props = {}) {
      const headers = props.timestampMs === undefined ? {} : { [AmqpHeaders.timestampMs]: props.timestampMs };
      await new Promise<void>((resolve, reject) => {
        publish.publish(
          AmqpNames.eventsExchange,
          routingKey,
          Buffer.from(body),
          { persistent: true, messageId: props.messageId, headers },
          (error) => (error ? reject(error) : resolve()),
        );
      });
    },
    async liveMessages() {
      return [...live];
    },
    async deadLetters() {
      // `sobranie.dead` is shared: take ours (marked with this queue's name), put the rest back.
      const others: amqp.GetMessage[] = [];
      for (let message = await admin.get(AmqpNames.deadQueue); message !== false; message = await admin.get(AmqpNames.deadQueue)) {
        const headers = message.properties.headers ?? {};
        if (headers[AmqpHeaders.deadQueue] !== queueName) {
          others.push(message);
          continue;
        }
        dead.push({
          routingKey: message.fields.routingKey,
          reason: String(headers[AmqpHeaders.deadReason]),
          message: String(headers[AmqpHeaders.deadMessage]),
        });
        admin.ack(message);
      }
      for (const message of others) admin.nack(message, false, true);
      return [...dead];
    },
    async cleanup() {
      await Promise.all(queues.map((created) => created.stop()));
      await admin.deleteQueue(queueName);
      await connection.close();
    },
  };
}

persistQueueContract("AmqpPersistQueue (RabbitMQ)", makeFixture);

/** Forces the broker to close a connection by its `connection_name`, as an operator or a broker restart would. */
async function closeConnectionByName(name: string): Promise<number> {
  const { stdout } = await run("rabbitmqctl", ["list_connections", "-q", "--no-table-headers", "pid", "client_properties"]);
  const pids = stdout
    .split("\n")
    .filter((line) => line.includes(`{"connection_name","${name}"}`))
    .map((line) => line.split("\t")[0] ?? "");
  await Promise.all(pids.map((pid) => run("rabbitmqctl", ["close_connection", pid, "persist queue test outage"])));
  return pids.length;
}

describe("AmqpPersistQueue specifics (RabbitMQ)", () => {
  let cleanup: (() => Promise<void>) | undefined;

  afterEach(async () => {
    await cleanup?.();
    cleanup = undefined;
  });

  async function setUp(): Promise<Awaited<ReturnType<typeof makeFixture>>> {
    const fixture = await makeFixture();
    cleanup = () => fixture.cleanup();
    return fixture;
  }

  it("declares a quorum queue with single active consumer and dead-letter exchange", async () => {
    const f = await setUp();
    await f.queue().start(new RecordingBatchHandler());
    const { stdout } = await run("rabbitmqctl", ["list_queues", "-q", "--no-table-headers", "name", "type", "arguments"]);
    const line = stdout.split("\n").find((row) => row.startsWith(`${f.queueName}\t`)) ?? "";
    expect(line).toContain("quorum");
    expect(line).toContain('{"x-single-active-consumer",true}');
    expect(line).toContain(`{"x-dead-letter-exchange","${AmqpNames.deadLetterExchange}"}`);
  });

  it("has one active consumer: the other instance takes over, in order, when it stops", async () => {
    const f = await setUp();
    const a = new RecordingBatchHandler();
    const b = new RecordingBatchHandler();
    const first = f.queue({ maxBatch: 10 });
    const second = f.queue({ maxBatch: 10 });
    await first.start(a);
    await second.start(b);
    expect(second.isReady()).toBe(true);
    const keys = keysFor(`${f.durableNamespace}.sac`, 40);
    await Promise.all(keys.slice(0, 20).map((key) => f.publishEvent(key, "{}")));
    await waitFor(() => a.done.length >= 20, TIMEOUT_MS, "the active instance handles the first 20");
    expect(b.batches).toEqual([]);
    await first.stop();
    await Promise.all(keys.slice(20).map((key) => f.publishEvent(key, "{}")));
    await waitFor(() => b.done.length >= 20, TIMEOUT_MS, "the standby takes over");
    expect([...a.doneKeys(), ...b.doneKeys()]).toEqual(keys);
  });

  it("reconnects after the broker closes its connection and continues without loss", async () => {
    const f = await setUp();
    const nodeId = `persist-${suffix()}`;
    const handler = new RecordingBatchHandler();
    const queue = f.queue({ nodeId, maxBatch: 10 });
    await queue.start(handler);
    const keys = keysFor(`${f.durableNamespace}.outage`, 100);
    await Promise.all(keys.slice(0, 50).map((key) => f.publishEvent(key, "{}")));
    expect(await closeConnectionByName(workerConnectionName(nodeId))).toBe(1);
    await Promise.all(keys.slice(50).map((key) => f.publishEvent(key, "{}")));
    await waitFor(() => keys.every((key) => handler.doneKeys().includes(key)), TIMEOUT_MS, "every message after the reconnect");
    await waitFor(() => queue.isReady(), TIMEOUT_MS, "ready again");
    // At least once, in order: duplicates are redeliveries of unacked messages, never reorderings of first arrivals.
    expect([...new Set(handler.doneKeys())]).toEqual(keys);
  });

  it("never acks a batch that was running when the connection dropped: it comes again on the new connection", async () => {
    const f = await setUp();
    const nodeId = `persist-${suffix()}`;
    const held = gate();
    const handler = new RecordingBatchHandler(async (batch, call) => {
      if (call === 0) await held.promise;
      return batch.map(() => ({ kind: "done" }));
    });
    const queue = f.queue({ nodeId, maxBatch: 10 });
    await queue.start(handler);
    const keys = keysFor(`${f.durableNamespace}.held`, 20);
    await Promise.all(keys.map((key) => f.publishEvent(key, "{}")));
    await waitFor(() => handler.batches.length === 1, TIMEOUT_MS, "the first batch");
    const first = handler.batches[0] ?? [];
    expect(await closeConnectionByName(workerConnectionName(nodeId))).toBe(1);
    await waitFor(() => queue.isReady(), TIMEOUT_MS, "reconnected");
    // Only now does the old batch finish; the next batch must wait for it, and its ack must go nowhere.
    expect(handler.batches.length).toBe(1);
    held.open();
    await waitFor(() => handler.done.length >= first.length + keys.length, TIMEOUT_MS, "the batch again, then the rest");
    const again = handler.done.slice(first.length);
    expect(again.map((message) => message.routingKey)).toEqual(keys);
    expect(again.slice(0, first.length).every((message) => message.redelivered)).toBe(true);
  });
});
