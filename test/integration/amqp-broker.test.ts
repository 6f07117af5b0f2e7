import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import net from "node:net";
import { promisify } from "node:util";
import amqp from "amqplib";
import { afterEach, describe, expect, it } from "vitest";
import { AmqpBroker } from "../../src/adapters/amqp/amqp-broker.js";
import { AmqpHeaders, AmqpNames } from "@sobranie/protocol/amqp";
import { connectionName, liveBindingKey } from "../../src/adapters/amqp/topology.js";
import type { BrokerHandler, LiveDelivery } from "../../src/core/ports/broker.js";
import { silentLogger } from "@sobranie/protocol/runtime/logger";
import { waitFor } from "../support/wait-for.js";
import { type BrokerFixture, brokerContract, CONTRACT_LIVE_NAMESPACES } from "../contract/broker.contract.js";

const RABBITMQ_URL = process.env.RABBITMQ_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const AMQP_DEFAULT_PORT = 5672;
const run = promisify(execFile);

/** Short backoff so the outage tests reconnect within a few hundred ms of `restore()`. */
const TEST_RECONNECT = { initialDelayMs: 20, maxDelayMs: 200 };
const TEST_NODE_QUEUE = { maxLength: 10_000, messageTtlMs: 60_000 };

/**
 * A TCP relay between the broker under test and RabbitMQ. While paused it
 * refuses new connections, which holds an outage open for as long as a test
 * needs (a `rabbitmqctl close_connection` alone lasts only until the next
 * reconnect attempt, ~100 ms).
 */
class TcpRelay {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private paused = false;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {
    this.server = net.createServer((client) => this.relay(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  dropAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: net.Socket): void {
    if (this.paused) {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.targetPort, this.targetHost);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

/** Forces the broker to close this node's connection, the way an operator (or a broker restart) would. */
async function closeConnectionByName(name: string): Promise<boolean> {
  const { stdout } = await run("rabbitmqctl", ["list_connections", "-q", "--no-table-headers", "pid", "client_properties"]);
  const pids = stdout
    .split("\n")
    .filter((line) => line.includes(`{"connection_name","${name}"}`))
    .map((line) => line.split("\t")[0] ?? "");
  await Promise.all(pids.map((pid) => run("rabbitmqctl", ["close_connection", pid, "contract test outage"])));
  return pids.length > 0;
}

/** Live bindings of every node queue of `nodeId` (one per connection: `sobranie.node.<nodeId>.<suffix>`). */
async function liveBindingsOf(nodeId: string): Promise<string[]> {
  const { stdout } = await run("rabbitmqctl", ["list_bindings", "-q", "--no-table-headers", "source_name", "destination_name", "routing_key"]);
  const suffix = liveBindingKey("");
  const queuePrefix = `${AmqpNames.nodeQueuePrefix}${nodeId}.`;
  return stdout
    .split("\n")
    .map((line) => line.split("\t"))
    .filter(([source, destination]) => source === AmqpNames.liveExchange && destination?.startsWith(queuePrefix))
    .map(([, , key]) => (key ?? "").slice(0, -suffix.length));
}

brokerContract("AmqpBroker (RabbitMQ)", async (): Promise<BrokerFixture> => {
  const nodeId = `contract-${randomUUID().slice(0, 8)}`;
  const target = new URL(RABBITMQ_URL);
  const relay = new TcpRelay(target.hostname, Number(target.port || AMQP_DEFAULT_PORT));
  const relayed = new URL(RABBITMQ_URL);
  relayed.hostname = "127.0.0.1";
  relayed.port = String(await relay.listen());

  const broker = new AmqpBroker({
    urls: [relayed.toString()],
    nodeId,
    liveNamespaces: CONTRACT_LIVE_NAMESPACES,
    logger: silentLogger,
    nodeQueue: TEST_NODE_QUEUE,
    reconnect: TEST_RECONNECT,
  });

  // The "backend": its own direct connection, unaffected by the relay.
  const admin = await amqp.connect(RABBITMQ_URL);
  admin.on("error", () => {});
  const publishChannel = await admin.createConfirmChannel();
  const deadChannel = await admin.createChannel();
  const collectedDead: Array<{ routingKey: string; reason: string }> = [];

  return {
    broker,
    async publishRaw(exchange, routingKey, body, props = {}) {
      const exchangeName = { events: AmqpNames.eventsExchange, live: AmqpNames.liveExchange, control: AmqpNames.controlExchange }[exchange];
      const headers = props.timestampMs === undefined ? {} : { [AmqpHeaders.timestampMs]: props.timestampMs };
      await new Promise<void>((resolve, reject) => {
        publishChannel.publish(exchangeName, routingKey, Buffer.from(body), { messageId: props.messageId, headers }, (error) =>
          error ? reject(error) : resolve(),
        );
      });
    },
    async simulateOutage() {
      relay.pause();
      // Finding them by name also checks `connection_name`: sobranie-gateway-<nodeId> consumes, its -publish sibling publishes.
      for (const name of [connectionName(nodeId), `${connectionName(nodeId)}-publish`]) {
        if (!(await closeConnectionByName(name))) throw new Error(`no broker connection named ${name}`);
      }
    },
    async restore() {
      relay.resume();
    },
    async deadLetters() {
      // `sobranie.dead` is shared by every test file: take ours (marked with
      // this node's id), put the rest back untouched.
      const others: amqp.GetMessage[] = [];
      for (;;) {
        const message = await deadChannel.get(AmqpNames.deadQueue, { noAck: false });
        if (message === false) break;
        const headers = message.properties.headers ?? {};
        if (headers[AmqpHeaders.deadNode] === nodeId) {
          collectedDead.push({ routingKey: message.fields.routingKey, reason: String(headers[AmqpHeaders.deadReason]) });
          deadChannel.ack(message);
        } else {
          others.push(message);
        }
      }
      for (const message of others) deadChannel.nack(message, false, true);
      return [...collectedDead];
    },
    serverBindings() {
      return liveBindingsOf(nodeId);
    },
    async cleanup() {
      // The node queue is exclusive: it goes with the broker's connection.
      await broker.stop();
      await admin.close();
      await relay.close();
    },
  };
});

describe("AmqpBroker specifics (RabbitMQ)", () => {
  const DELIVERY_TIMEOUT_MS = 10_000;
  const cleanups: Array<() => Promise<void>> = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setUp(): Promise<{ broker: AmqpBroker; nodeId: string; received: LiveDelivery[]; admin: amqp.ConfirmChannel; reconnects: () => number }> {
    const nodeId = `specific-${randomUUID().slice(0, 8)}`;
    let reconnectCount = 0;
    const broker = new AmqpBroker({
      urls: [RABBITMQ_URL],
      nodeId,
      liveNamespaces: CONTRACT_LIVE_NAMESPACES,
      logger: silentLogger,
      nodeQueue: TEST_NODE_QUEUE,
      reconnect: TEST_RECONNECT,
      onReconnect: () => {
        reconnectCount += 1;
      },
    });
    const received: LiveDelivery[] = [];
    const handler: BrokerHandler = {
      handleDelivery(delivery) {
        received.push({ ...delivery, body: new Uint8Array(delivery.body) });
        return delivery.routingKey.endsWith(".poison") ? { kind: "dead-letter", reason: "bad", message: "poison body" } : { kind: "delivered" };
      },
      handleControl: () => ({ kind: "delivered" }),
      readinessChanged() {},
    };
    const connection = await amqp.connect(RABBITMQ_URL);
    connection.on("error", () => {});
    const admin = await connection.createConfirmChannel();
    cleanups.push(async () => {
      await broker.stop();
      await connection.close();
    });
    await broker.start(handler);
    return { broker, nodeId, received, admin, reconnects: () => reconnectCount };
  }

  function publish(channel: amqp.ConfirmChannel, routingKey: string, options: amqp.Options.Publish = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      channel.publish(AmqpNames.liveExchange, routingKey, Buffer.from("{}"), options, (error) => (error ? reject(error) : resolve()));
    });
  }

  it("recovers from a channel error: the node queue deleted under it, then a bind that gets a 404", async () => {
    const { broker, received, admin, reconnects } = await setUp();
    await broker.bind("post.kept");
    const deleted = broker.queueName!;
    // Exclusive: only the CLI (as an operator would) can delete it from outside.
    await run("rabbitmqctl", ["delete_queue", deleted]);
    // Whichever comes first (consumer cancel or the bind's 404), the broker
    // recovers, re-declares the queue and restores both bindings.
    await broker.bind("post.later");
    await waitFor(() => broker.isReady() && reconnects() >= 1, DELIVERY_TIMEOUT_MS, "recovered");
    expect(broker.queueName).not.toBe(deleted);
    await publish(admin, "post.kept.a");
    await publish(admin, "post.later.b");
    await waitFor(() => received.length === 2, DELIVERY_TIMEOUT_MS, "both delivered after recovery");
    expect(received.map((delivery) => delivery.routingKey)).toEqual(["post.kept.a", "post.later.b"]);
  });

  it("writes the reason, message, node and queue headers on a dead letter", async () => {
    const { broker, nodeId, admin } = await setUp();
    const prefix = `post.dl${randomUUID().slice(0, 8)}`;
    await broker.bind(prefix);
    await publish(admin, `${prefix}.poison`);
    let headers: Record<string, unknown> | undefined;
    await waitFor(
      async () => {
        // The queue is shared: hold every message unacked while scanning, then put back the others.
        const others: amqp.GetMessage[] = [];
        for (let message = await admin.get(AmqpNames.deadQueue); message !== false; message = await admin.get(AmqpNames.deadQueue)) {
          if (message.fields.routingKey === `${prefix}.poison`) {
            headers = message.properties.headers;
            admin.ack(message);
          } else others.push(message);
        }
        for (const message of others) admin.nack(message, false, true);
        return headers !== undefined;
      },
      DELIVERY_TIMEOUT_MS,
      "the dead letter",
    );
    expect(headers).toMatchObject({
      [AmqpHeaders.deadReason]: "bad",
      [AmqpHeaders.deadMessage]: "poison body",
      [AmqpHeaders.deadNode]: nodeId,
      [AmqpHeaders.deadQueue]: broker.queueName,
    });
  });

  it("reads timestampMs from the ms header, else from the AMQP timestamp in seconds", async () => {
    const { broker, received, admin } = await setUp();
    await broker.bind("post.ts");
    await publish(admin, "post.ts.header", { timestamp: 1_700_000_000, headers: { [AmqpHeaders.timestampMs]: 1_700_000_000_456 } });
    await publish(admin, "post.ts.seconds", { timestamp: 1_700_000_000 });
    await waitFor(() => received.length === 2, DELIVERY_TIMEOUT_MS, "two deliveries");
    expect(received.map((delivery) => delivery.timestampMs)).toEqual([1_700_000_000_456, 1_700_000_000_000]);
  });
});
