import { readFileSync } from "node:fs";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChannelAttempt } from "@sobranie/publisher/amqp/session";
import { AmqpNames } from "@sobranie/protocol/amqp";
import { DEAD_QUEUE_ARGUMENTS, PERSIST_DELIVERY_LIMIT, assertDeadQueue, assertNodeQueue, assertPersistQueue, assertSharedTopology, liveBindingKey } from "../../src/adapters/amqp/topology.js";
import { loadConfig } from "../../src/config/index.js";
import { NamespaceRegistry } from "../../src/core/namespaces.js";
import { RABBITMQ_URL, uniqueId } from "../support/test-gateway.js";

/**
 * rabbitmq/definitions.json must describe exactly the topology the code
 * asserts: a queue pre-created with other arguments makes the code's declare
 * fail with 406 PRECONDITION_FAILED and the gateway never becomes ready.
 * Each test works in a fresh vhost of its own, deleted afterwards.
 */

interface Exchange { name: string; vhost: string; type: string; durable: boolean; auto_delete: boolean; internal: boolean; arguments: Record<string, unknown> }
interface Queue { name: string; vhost: string; durable: boolean; auto_delete: boolean; arguments: Record<string, unknown> }
interface Binding { source: string; vhost: string; destination: string; destination_type: string; routing_key: string; arguments: Record<string, unknown> }
interface Policy { vhost: string; name: string; pattern: string; "apply-to": string; definition: Record<string, unknown> }
interface Definitions { exchanges: Exchange[]; queues: Queue[]; bindings: Binding[]; policies: Policy[]; users?: unknown[]; permissions?: unknown[]; vhosts?: unknown[] }

const definitions = JSON.parse(readFileSync(new URL("../../rabbitmq/definitions.json", import.meta.url), "utf8")) as Definitions;

// The production configuration with defaults: the namespaces and node queue options a gateway asserts.
const config = loadConfig({ RABBITMQ_URL, JWT_SECRET: "x".repeat(32), ROLE: "gateway" });
const namespaces = new NamespaceRegistry(config.namespaces);
const liveNamespaces = namespaces.liveNamespaces();
const durableNamespaces = namespaces.all().filter((policy) => policy.durable).map((policy) => policy.name);

const amqpUrl = new URL(RABBITMQ_URL);
const managementBase = process.env.RABBITMQ_MANAGEMENT_URL ?? `http://${amqpUrl.hostname}:15672`;
const authorization = `Basic ${Buffer.from(`${decodeURIComponent(amqpUrl.username || "guest")}:${decodeURIComponent(amqpUrl.password || "guest")}`).toString("base64")}`;

async function management(method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${managementBase}/api${path}`, {
    method,
    headers: { authorization, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

const createdVhosts: string[] = [];

async function freshVhost(): Promise<string> {
  const vhost = uniqueId("sobranie-defs");
  await management("PUT", `/vhosts/${encodeURIComponent(vhost)}`);
  createdVhosts.push(vhost);
  const user = decodeURIComponent(amqpUrl.username || "guest");
  await management("PUT", `/permissions/${encodeURIComponent(vhost)}/${encodeURIComponent(user)}`, { configure: ".*", write: ".*", read: ".*" });
  return vhost;
}

/** The file's vhost-scoped part, moved to `vhost` (users, vhosts and permissions are cluster-wide: left out). */
function definitionsFor(vhost: string, source: Definitions = definitions): Pick<Definitions, "exchanges" | "queues" | "bindings" | "policies"> {
  const move = <T extends { vhost: string }>(items: T[]): T[] => items.map((item) => ({ ...item, vhost }));
  return { exchanges: move(source.exchanges), queues: move(source.queues), bindings: move(source.bindings), policies: move(source.policies) };
}

async function importInto(vhost: string, source: Definitions = definitions): Promise<void> {
  await management("POST", `/definitions/${encodeURIComponent(vhost)}`, definitionsFor(vhost, source));
}

async function connect(vhost: string): Promise<amqp.ChannelModel> {
  const url = new URL(RABBITMQ_URL);
  url.pathname = `/${encodeURIComponent(vhost)}`;
  return amqp.connect(url.toString());
}

/**
 * Runs every declare a gateway and a worker make on (re)connect. Strict where
 * the processes are lenient: the dead-letter queue's declare must succeed
 * here (the processes only warn), and a persist queue without
 * x-delivery-limit counts as drift.
 */
async function assertCodeTopology(vhost: string): Promise<void> {
  const connection = await connect(vhost);
  try {
    const channel = await connection.createChannel();
    // A 406 closes the channel: the declare's promise rejects with it; the
    // channel's 'error' event carries the same error and needs a listener.
    channel.on("error", () => {});
    const attempt: ChannelAttempt = async (step) => {
      const own = await connection.createChannel();
      own.on("error", () => {});
      try {
        await step(own);
        return { ok: true };
      } catch (error) {
        return { ok: false, error };
      } finally {
        own.close().catch(() => {});
      }
    };
    await assertSharedTopology(channel, liveNamespaces);
    await assertDeadQueue(channel);
    expect(await assertPersistQueue(channel, { queue: AmqpNames.persistQueue, durableNamespaces }, attempt)).toBe("declared");
    await assertNodeQueue(channel, "defs-test-node", config.nodeQueue);
    await channel.close();
  } finally {
    await connection.close().catch(() => {});
  }
}

type Comparable = { exchanges: unknown[]; queues: unknown[]; bindings: unknown[] };

/** Order-free, vhost-free view of exchanges, queues and bindings. */
function comparable(source: Pick<Definitions, "exchanges" | "queues" | "bindings">): Comparable {
  const byJson = (a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b));
  return {
    exchanges: source.exchanges
      .filter((exchange) => exchange.name.startsWith("sobranie."))
      .map(({ name, type, durable, auto_delete, internal, arguments: args }) => ({ name, type, durable, auto_delete, internal, arguments: args }))
      .sort(byJson),
    queues: source.queues
      .filter((queue) => !queue.name.startsWith(AmqpNames.nodeQueuePrefix))
      .map(({ name, durable, auto_delete, arguments: args }) => ({ name, durable, auto_delete, arguments: args }))
      .sort(byJson),
    bindings: source.bindings
      .filter((binding) => !binding.destination.startsWith(AmqpNames.nodeQueuePrefix) && binding.source !== "")
      .map(({ source: from, destination, destination_type, routing_key, arguments: args }) => ({ source: from, destination, destination_type, routing_key, arguments: args }))
      .sort(byJson),
  };
}

afterAll(async () => {
  for (const vhost of createdVhosts) await management("DELETE", `/vhosts/${encodeURIComponent(vhost)}`).catch(() => {});
});

describe("rabbitmq/definitions.json agrees with the topology the code asserts", () => {
  beforeAll(async () => {
    await management("GET", "/overview");
  });

  it("names every exchange and shared queue from AmqpNames, with the code's arguments", () => {
    expect(definitions.exchanges.map((exchange) => [exchange.name, exchange.type]).sort()).toEqual(
      [
        [AmqpNames.deadLetterExchange, "fanout"],
        [AmqpNames.eventsExchange, "topic"],
        [AmqpNames.liveExchange, "topic"],
        [AmqpNames.presenceExchange, "topic"],
        [AmqpNames.controlExchange, "fanout"],
      ].sort(),
    );
    const dead = definitions.queues.find((queue) => queue.name === AmqpNames.deadQueue);
    expect(dead?.arguments).toEqual(DEAD_QUEUE_ARGUMENTS);
    const persist = definitions.queues.find((queue) => queue.name === AmqpNames.persistQueue);
    expect(persist?.arguments).toEqual({
      "x-queue-type": "quorum",
      "x-single-active-consumer": true,
      "x-dead-letter-exchange": AmqpNames.deadLetterExchange,
      "x-delivery-limit": PERSIST_DELIVERY_LIMIT,
    });
    const keys = (destination: string) =>
      definitions.bindings.filter((binding) => binding.source === AmqpNames.eventsExchange && binding.destination === destination).map((binding) => binding.routing_key).sort();
    expect(keys(AmqpNames.liveExchange)).toEqual(liveNamespaces.map(liveBindingKey).sort());
    expect(keys(AmqpNames.persistQueue)).toEqual(durableNamespaces.map(liveBindingKey).sort());
    expect([...liveNamespaces].sort()).toEqual(["post", "status"]);
    expect([...durableNamespaces].sort()).toEqual(["room", "user"]);
  });

  it("holds exactly what the code's own declares create in an empty vhost (node queues aside)", async () => {
    const vhost = await freshVhost();
    await assertCodeTopology(vhost);
    const exported = (await management("GET", `/definitions/${encodeURIComponent(vhost)}`)) as Definitions;
    expect(comparable(definitions)).toEqual(comparable(exported));
  });

  it("loaded into a fresh vhost, lets a gateway and a worker assert their topology without 406", async () => {
    const vhost = await freshVhost();
    await importInto(vhost);
    const queues = (await management("GET", `/queues/${encodeURIComponent(vhost)}`)) as Queue[];
    expect(queues.map((queue) => queue.name).sort()).toEqual([AmqpNames.deadQueue, AmqpNames.persistQueue]);
    await expect(assertCodeTopology(vhost)).resolves.toBeUndefined();
    // Both shared queues are quorum queues: replicated, so no single node's loss makes them unavailable.
    expect(Object.fromEntries(queues.map((queue) => [queue.name, (queue as Queue & { type?: string }).type]))).toEqual({
      [AmqpNames.deadQueue]: "quorum",
      [AmqpNames.persistQueue]: "quorum",
    });
    expect(definitions.policies).toEqual([]);
  });

  it("would catch a drifted argument: the code's declare then fails with 406", async () => {
    const drifted: Definitions = {
      ...definitions,
      queues: definitions.queues.map((queue) =>
        queue.name === AmqpNames.persistQueue ? { ...queue, arguments: { ...queue.arguments, "x-single-active-consumer": false } } : queue,
      ),
    };
    const vhost = await freshVhost();
    await importInto(vhost, drifted);
    await expect(assertCodeTopology(vhost)).rejects.toThrow(/PRECONDITION_FAILED|406/);
  });
});

describe("rabbitmq/rabbitmq.conf and enabled_plugins", () => {
  const read = (name: string) => readFileSync(new URL(`../../${name}`, import.meta.url), "utf8");

  it("load the definitions and enable the management and Prometheus plugins Prometheus scrapes", () => {
    const conf = read("rabbitmq/rabbitmq.conf");
    expect(conf).toMatch(/^load_definitions = \/etc\/rabbitmq\/definitions\.json$/m);
    expect(read("rabbitmq/enabled_plugins").trim()).toBe("[rabbitmq_management,rabbitmq_prometheus].");
    const port = /^prometheus\.tcp\.port = (\d+)$/m.exec(conf)?.[1];
    expect(port).toBe("15692");
    const prometheus = read("monitoring/prometheus.yml");
    for (const node of ["rabbitmq-1", "rabbitmq-2", "rabbitmq-3"]) expect(prometheus).toContain(`"${node}:${port}"`);
  });
});
