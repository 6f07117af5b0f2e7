import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectionName } from "../../src/adapters/amqp/topology.js";
import { TestPublisher } from "../support/amqp-tools.js";
import { closeConnectionsNamed } from "../support/rabbit-vhost.js";
import { waitFor } from "../support/wait-for.js";
import { RABBITMQ_URL, signToken, startTestGateway, uniqueId, type TestGateway } from "../support/test-gateway.js";
import { TestClient } from "../support/ws-client.js";

describe("the live path: RabbitMQ → gateway → WebSocket", () => {
  let gateway: TestGateway;
  let publisher: TestPublisher;

  beforeAll(async () => {
    gateway = await startTestGateway();
    publisher = await TestPublisher.open();
  });

  afterAll(async () => {
    await gateway?.stop();
    await publisher?.close();
  });

  async function subscribedClient(channel: string, sub = uniqueId("u")): Promise<TestClient> {
    const client = await TestClient.connect(gateway.wsUrl, { token: await signToken({ sub }) });
    expect(await client.request({ op: "subscribe", channel })).toMatchObject({ op: "ok", recovered: false, missed: 0 });
    return client;
  }

  it("delivers an event published with amqplib to every subscriber of its channel, and only to them", async () => {
    const id = uniqueId("p");
    const [a, b] = [await subscribedClient(`post:${id}`), await subscribedClient(`post:${id}`)];
    const other = await subscribedClient(`post:${id}x`);
    await publisher.publish(`post.${id}.comment.created`, { id: "e1", type: "comment.created", data: { text: "hi" } });
    for (const client of [a, b]) {
      expect(await client.next((f) => f.op === "event")).toMatchObject({
        op: "event",
        channel: `post:${id}`,
        id: "e1",
        type: "comment.created",
        data: { text: "hi" },
        ts: expect.any(String),
      });
    }
    await publisher.publish(`post.${id}x.comment.created`, { id: "e2", type: "comment.created", data: {} });
    await other.next((f) => f.op === "event" && f.id === "e2");
    expect(other.events(`post:${id}`)).toHaveLength(0);
    expect(a.events(`post:${id}x`)).toHaveLength(0);
    for (const client of [a, b, other]) client.close();
  });

  it("takes the event id from the AMQP message_id when the body has none, and keeps order", async () => {
    const id = uniqueId("p");
    const client = await subscribedClient(`post:${id}`);
    for (let i = 0; i < 50; i++) {
      await publisher.publish(`post.${id}.tick`, { type: "tick", data: { i } }, { messageId: `m${i}` });
    }
    await client.next((f) => f.op === "event" && f.id === "m49");
    expect(client.events(`post:${id}`).map((f) => (f.data as { i: number }).i)).toEqual([...Array(50).keys()]);
    client.close();
  });

  it("stops delivering after unsubscribe", async () => {
    const id = uniqueId("p");
    const client = await subscribedClient(`post:${id}`);
    expect(await client.request({ op: "unsubscribe", channel: `post:${id}` })).toMatchObject({ op: "ok" });
    const witness = await subscribedClient(`post:${id}`);
    await publisher.publish(`post.${id}.tick`, { id: "after", type: "tick", data: {} });
    await witness.next((f) => f.op === "event" && f.id === "after");
    expect(client.events(`post:${id}`)).toHaveLength(0);
    client.close();
    witness.close();
  });

  it("dead-letters poison events with their reason and still delivers the next valid one", async () => {
    const id = uniqueId("p");
    const client = await subscribedClient(`post:${id}`);
    const watch = await DeadLetterWatch.open();
    const depthBefore = await watch.deadQueueDepth();
    await publisher.publish(`post.${id}.bad`, "this is not json");
    await publisher.publish(`post.${id}.bad`, { type: "missing.data" });
    await publisher.publish(`post.${id}.good`, { id: "valid", type: "good", data: { ok: true } });
    await client.next((f) => f.op === "event" && f.id === "valid");
    expect(client.events(`post:${id}`)).toHaveLength(1);

    const reasons = await watch.reasons(`post.${id}.bad`, 2);
    expect(reasons.sort()).toEqual(["invalid_envelope", "not_json"]);
    // sobranie.dead is shared with other test files, some of which take and put
    // back messages while they look for their own: its count can dip for a moment.
    await waitFor(async () => (await watch.deadQueueDepth()) >= depthBefore + 2, 10_000, "both poison events in sobranie.dead");
    const metrics = await (await fetch(`${gateway.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/sobranie_dead_lettered_total\{[^}]*reason="not_json"[^}]*\} [1-9]/);
    await watch.close();
    client.close();
  });

  it("dead-letters an event whose data nests over 64 levels as too_deep, counts it, and delivers the next one", async () => {
    const id = uniqueId("p");
    const client = await subscribedClient(`post:${id}`);
    const watch = await DeadLetterWatch.open();
    // About 20 KB: far under the size limit, deep enough to overflow JSON.stringify.
    await publisher.publish(`post.${id}.deep`, `{"id":"deep","type":"deep","data":${"[".repeat(10_000)}${"]".repeat(10_000)}}`);
    await publisher.publish(`post.${id}.good`, { id: "after-deep", type: "good", data: { ok: true } });
    await client.next((f) => f.op === "event" && f.id === "after-deep");
    expect(client.events(`post:${id}`)).toHaveLength(1);
    expect(await watch.reasons(`post.${id}.deep`, 1)).toEqual(["too_deep"]);
    const metrics = await (await fetch(`${gateway.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/sobranie_dead_lettered_total\{[^}]*reason="too_deep"[^}]*\} [1-9]/);
    await watch.close();
    client.close();
  });

  it("reconnects after the broker closes its connection, re-binds, and delivers again without a restart", async () => {
    const id = uniqueId("p");
    const client = await subscribedClient(`post:${id}`);
    await publisher.publish(`post.${id}.tick`, { id: "before", type: "tick", data: {} });
    await client.next((f) => f.id === "before");

    const wasReady = await fetch(`${gateway.httpUrl}/readyz`);
    expect(wasReady.status).toBe(200);
    expect(await closeConnectionsNamed(connectionName(gateway.nodeId))).toBe(1);
    await waitFor(async () => /sobranie_amqp_reconnects_total(\{[^}]*\})? [1-9]/.test(await (await fetch(`${gateway.httpUrl}/metrics`)).text()), 10_000, "a reconnect");
    await waitFor(async () => (await fetch(`${gateway.httpUrl}/readyz`)).status === 200, 10_000, "ready again");

    await publisher.publish(`post.${id}.tick`, { id: "after", type: "tick", data: {} });
    await client.next((f) => f.id === "after");
    client.close();
  });
});

/**
 * Watches `sobranie.dlx` through a private queue bound to it, so a test sees
 * its own dead letters without consuming what other tests left in `sobranie.dead`.
 */
class DeadLetterWatch {
  private constructor(
    private readonly connection: amqp.ChannelModel,
    private readonly channel: amqp.Channel,
    private readonly queue: string,
  ) {}

  static async open(): Promise<DeadLetterWatch> {
    const connection = await amqp.connect(RABBITMQ_URL);
    const channel = await connection.createChannel();
    const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, "sobranie.dlx", "");
    return new DeadLetterWatch(connection, channel, queue);
  }

  /** The `x-sobranie-reason` of the first `count` dead letters with this routing key. */
  async reasons(routingKey: string, count: number, timeoutMs = 5_000): Promise<string[]> {
    const reasons: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${reasons.length} of ${count} dead letters arrived`)), timeoutMs);
      void this.channel.consume(this.queue, (message) => {
        if (message?.fields.routingKey !== routingKey) return;
        reasons.push(String(message.properties.headers?.["x-sobranie-reason"]));
        if (reasons.length === count) {
          clearTimeout(timer);
          resolve();
        }
      }, { noAck: true });
    });
    return reasons;
  }

  async deadQueueDepth(): Promise<number> {
    return (await this.channel.checkQueue("sobranie.dead")).messageCount;
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => {});
  }
}
