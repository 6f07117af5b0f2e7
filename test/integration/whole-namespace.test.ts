import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectionName } from "../../src/adapters/amqp/topology.js";
import { nodeQueueOf, TestPublisher } from "../support/amqp-tools.js";
import { closeConnectionsNamed } from "../support/rabbit-vhost.js";
import { waitFor } from "../support/wait-for.js";
import { signToken, startTestGateway, uniqueId, type TestGateway } from "../support/test-gateway.js";
import { TestClient } from "../support/ws-client.js";

const run = promisify(execFile);

/** Routing keys bound on `queue`, from the broker itself. */
async function bindingsOf(queue: string): Promise<string[]> {
  const { stdout } = await run("rabbitmqctl", ["list_bindings", "source_name", "destination_name", "routing_key", "--formatter", "json", "-q"]);
  const rows = JSON.parse(stdout) as Array<{ source_name: string; destination_name: string; routing_key: string }>;
  // The default exchange binds every queue to its own name: not ours. Every node queue is bound to the control exchange too.
  return rows.filter((row) => row.destination_name === queue && row.source_name !== "").map((row) => `${row.source_name} ${row.routing_key}`).sort();
}

// `post` stands in for any namespace: it reaches the live exchange without the worker.
describe("BIND_WHOLE_NAMESPACES=post on the real RabbitMQ", () => {
  let gateway: TestGateway;
  let publisher: TestPublisher;

  beforeAll(async () => {
    gateway = await startTestGateway({ BIND_WHOLE_NAMESPACES: "post" });
    publisher = await TestPublisher.open();
  });

  afterAll(async () => {
    await gateway?.stop();
    await publisher?.close();
  });

  it("binds post.# once at start and nothing per channel, delivers to subscribers and drops (counted) the rest", async () => {
    const queue = await nodeQueueOf(gateway.nodeId);
    expect(await bindingsOf(queue)).toEqual(["sobranie.control ", "sobranie.live post.#"]);

    const id = uniqueId("w");
    const client = await TestClient.connect(gateway.wsUrl, { token: await signToken({ sub: uniqueId("u") }) });
    for (const channel of [`post:${id}`, `post:${id}b`]) {
      expect(await client.request({ op: "subscribe", channel })).toMatchObject({ op: "ok" });
    }
    expect(await bindingsOf(queue)).toEqual(["sobranie.control ", "sobranie.live post.#"]);

    // One node queue, one consumer: once the second event is here, the first was handled.
    await publisher.publish(`post.${id}nobody.tick`, { id: "unwatched", type: "tick", data: {} });
    await publisher.publish(`post.${id}.tick`, { id: "watched", type: "tick", data: {} });
    expect(await client.next((f) => f.op === "event")).toMatchObject({ channel: `post:${id}`, id: "watched" });
    expect(client.events(`post:${id}nobody`)).toHaveLength(0);
    const metrics = await (await fetch(`${gateway.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/sobranie_unsubscribed_dropped_total\{[^}]*namespace="post"[^}]*\} 1\n/);
    expect(metrics).toMatch(/sobranie_bindings_active(\{[^}]*\})? 1\n/);
    client.close();
  });

  it("makes the namespace binding on the new connection's queue, before it reports ready", async () => {
    const before = await nodeQueueOf(gateway.nodeId);
    expect(await closeConnectionsNamed(connectionName(gateway.nodeId))).toBe(1);
    await waitFor(async () => /sobranie_amqp_reconnects_total(\{[^}]*\})? [1-9]/.test(await (await fetch(`${gateway.httpUrl}/metrics`)).text()), 10_000, "a reconnect");
    await waitFor(async () => (await fetch(`${gateway.httpUrl}/readyz`)).status === 200, 10_000, "ready again");
    // The old queue went with its connection (exclusive); the new one has the binding.
    const after = await nodeQueueOf(gateway.nodeId);
    expect(after).not.toBe(before);
    expect(await bindingsOf(after)).toEqual(["sobranie.control ", "sobranie.live post.#"]);
  });
});
