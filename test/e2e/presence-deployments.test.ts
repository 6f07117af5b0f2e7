import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AmqpHeaders, AmqpNames, presenceExchangeName } from "../../src/adapters/amqp/topology.js";
import { encodePresenceMessage } from "../../src/protocol/presence.js";
import { GatewayProcess } from "../support/gateway-process.js";
import { createRabbitVhost, type RabbitVhost } from "../support/rabbit-vhost.js";
import { signToken, TEST_JWT_SECRET, uniqueId } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { TestClient } from "../support/ws-client.js";

/**
 * Two deployments on one RabbitMQ vhost (issue #14): gateways a1 and a2 with
 * one DEPLOYMENT_ID, b1 with another. Before DEPLOYMENT_ID every gateway of
 * the vhost was one presence cluster: a1 listed b1's members, counted it as a
 * node and logged `presence: node removed` for it when it stopped.
 */
const HEARTBEAT_MS = 300;
const TTL_MS = 1_500;
const API_KEY = "presence-deployments-api-key-0123456789";
const ACROSS_NODES_MS = 10_000;

interface Node {
  readonly id: string;
  readonly process: GatewayProcess;
  readonly wsUrl: string;
  readonly httpUrl: string;
}

async function startNode(id: string, deploymentId: string, url: string): Promise<Node> {
  const process = GatewayProcess.start([], {
    PORT: "0",
    HOST: "127.0.0.1",
    ROLE: "gateway",
    NODE_ID: id,
    DEPLOYMENT_ID: deploymentId,
    RABBITMQ_URL: url,
    JWT_SECRET: TEST_JWT_SECRET,
    API_KEYS: API_KEY,
    LOG_LEVEL: "info",
    HEARTBEAT_MS: String(HEARTBEAT_MS),
    PRESENCE_TTL_MS: String(TTL_MS),
    DRAIN_GRACE_MS: "200",
    BIND_LINGER_MS: "200",
  });
  const port = await process.listeningPort();
  await process.waitForOutput(/"msg":"ready"/);
  return { id, process, wsUrl: `ws://127.0.0.1:${port}/realtime/ws`, httpUrl: `http://127.0.0.1:${port}` };
}

/** The `presence: node removed` log line naming `peer`. */
function removedLine(peer: string): RegExp {
  return new RegExp(`"peer":"${peer}"[^\\n]*"msg":"presence: node removed"`);
}

describe("presence of two deployments sharing one RabbitMQ vhost", () => {
  let vhost: RabbitVhost;
  let a1: Node;
  let a2: Node;
  let b1: Node;
  let broker: amqp.ChannelModel;
  const backendEvents: Array<{ routingKey: string; data: Record<string, unknown> }> = [];
  const clients: TestClient[] = [];
  let pinger: NodeJS.Timeout | undefined;
  const run = uniqueId("pd").slice(3).toLowerCase();
  const deploymentA = `a-${run}`;
  const deploymentB = `b-${run}`;

  const connect = async (node: Node, sub: string): Promise<TestClient> => {
    const client = await TestClient.connect(node.wsUrl, { token: await signToken({ sub, channels: ["room:*"], info: { name: sub } }) });
    clients.push(client);
    return client;
  };
  const membersOn = async (node: Node, channel: string): Promise<string[]> => {
    const response = await fetch(`${node.httpUrl}/api/v1/presence/${channel}`, { headers: { authorization: `Bearer ${API_KEY}` } });
    const body = (await response.json()) as { members: Array<{ user: string }> };
    return body.members.map((member) => member.user).sort();
  };
  const statusOn = async (node: Node, user: string): Promise<boolean> => {
    const response = await fetch(`${node.httpUrl}/api/v1/status?users=${user}`, { headers: { authorization: `Bearer ${API_KEY}` } });
    return ((await response.json()) as { users: Array<{ online: boolean }> }).users[0]!.online;
  };
  const metric = async (node: Node, sample: RegExp): Promise<number> => {
    const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
    return Number(sample.exec(text)?.[1] ?? Number.NaN);
  };
  const presenceNodes = (node: Node) => metric(node, /^sobranie_presence_nodes\{[^}]*\} (\d+)$/m);

  beforeAll(async () => {
    vhost = await createRabbitVhost("presence-deployments");
    [a1, a2, b1] = await Promise.all([
      startNode(`a1-${run}`, deploymentA, vhost.url),
      startNode(`a2-${run}`, deploymentA, vhost.url),
      startNode(`b1-${run}`, deploymentB, vhost.url),
    ]);
    // What backends see: a private queue on sobranie.events bound with presence.#.
    broker = await amqp.connect(vhost.url);
    const channel = await broker.createChannel();
    const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, AmqpNames.eventsExchange, "presence.#");
    await channel.consume(queue, (message) => {
      if (message) backendEvents.push({ routingKey: message.fields.routingKey, data: (JSON.parse(message.content.toString()) as { data: Record<string, unknown> }).data });
    }, { noAck: true });
    pinger = setInterval(() => {
      for (const client of clients) if (client.socket.readyState === client.socket.OPEN) client.socket.ping();
    }, HEARTBEAT_MS);
    // a1 and a2 hear each other before the tests start.
    await waitFor(async () => {
      const probe = await connect(a1, "probe");
      const seen = await statusOn(a2, "probe");
      probe.close();
      return seen;
    }, 30_000, "a1 and a2 see each other");
  }, 120_000);

  afterAll(async () => {
    if (pinger) clearInterval(pinger);
    for (const client of clients) client.close();
    await broker?.close().catch(() => {});
    await GatewayProcess.killAll();
    await vhost?.drop();
  });

  it("lists and counts only its own deployment's members and nodes", async () => {
    const channel = `room:shared${run}`;
    const bob = await connect(b1, `bob${run}`);
    await bob.request({ op: "subscribe", channel, presence: true });
    // b1 follows its delta with heartbeats on the same route: two of them later it has reached every queue on the vhost it would reach.
    await new Promise((resolve) => setTimeout(resolve, 2 * HEARTBEAT_MS));
    const alice = await connect(a2, `alice${run}`);
    await alice.request({ op: "subscribe", channel, presence: true });
    await waitFor(async () => (await membersOn(a1, channel)).includes(`alice${run}`), ACROSS_NODES_MS, "alice on a1");
    expect(await membersOn(a1, channel)).toEqual([`alice${run}`]);
    expect(await membersOn(a2, channel)).toEqual([`alice${run}`]);
    expect(await membersOn(b1, channel)).toEqual([`bob${run}`]);
    expect(await statusOn(a1, `bob${run}`)).toBe(false);
    expect(await statusOn(b1, `alice${run}`)).toBe(false);
    await waitFor(async () => (await presenceNodes(b1)) === 1, ACROSS_NODES_MS, "b1 counts itself");
    expect(await presenceNodes(a1)).toBe(2);
    expect(await presenceNodes(a2)).toBe(2);
  });

  it("tells backends which deployment a presence event comes from", async () => {
    const key = `presence.room.shared${run}.join`;
    await waitFor(() => backendEvents.filter((event) => event.routingKey === key).length === 2, ACROSS_NODES_MS, "both joins published");
    const joins = backendEvents.filter((event) => event.routingKey === key).map((event) => [event.data.user, event.data.deployment]);
    expect(joins.sort()).toEqual([
      [`alice${run}`, deploymentA],
      [`bob${run}`, deploymentB],
    ]);
  });

  it("drops a message of another deployment on its own exchange and counts it", async () => {
    const foreign = (node: Node) => metric(node, /^sobranie_presence_messages_dropped_total\{reason="foreign"[^}]*\} (\d+)$/m);
    expect(await foreign(a1)).toBe(0);
    const channel = await broker.createChannel();
    const intruder = { kind: "heartbeat", node: `intruder-${run}`, incarnation: "i-1", atMs: Date.now(), seq: 0, digest: "0:0:0", synced: true } as const;
    channel.publish(presenceExchangeName(deploymentA), "heartbeat.intruder", Buffer.from(encodePresenceMessage(intruder)), {
      headers: { [AmqpHeaders.deployment]: deploymentB },
    });
    await waitFor(async () => (await foreign(a1)) === 1 && (await foreign(a2)) === 1, ACROSS_NODES_MS, "counted on a1 and a2");
    expect(await foreign(b1)).toBe(0);
    await a1.process.waitForOutput(/"msg":"presence message of another deployment dropped"/);
    expect(await presenceNodes(a1)).toBe(2);
  });

  it("never removes another deployment's node: b1 stopping is heard by nobody in deployment a", async () => {
    b1.process.kill("SIGTERM");
    expect((await b1.process.exited).code).toBe(0);
    // b1 published `leaving` before it exited; a2's comes after it, so a1 logs any removal of b1 before a2's.
    a2.process.kill("SIGTERM");
    await a2.process.exited;
    await a1.process.waitForOutput(removedLine(a2.id), ACROSS_NODES_MS);
    expect(a1.process.stdout).not.toMatch(removedLine(b1.id));
  });
});
