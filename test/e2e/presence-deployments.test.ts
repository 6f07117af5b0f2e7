import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AmqpHeaders } from "@sobranie/protocol/amqp";
import { presenceExchangeName } from "../../src/adapters/amqp/topology.js";
import { encodePresenceMessage } from "@sobranie/protocol/presence";
import { GatewayProcess } from "../support/gateway-process.js";
import { ACROSS_NODES_MS, BackendPresenceWatch, membersOn, PRESENCE_HEARTBEAT_MS, type PresenceGateway, startPresenceGateway, statusOn } from "../support/presence-gateways.js";
import { createRabbitVhost, type RabbitVhost } from "../support/rabbit-vhost.js";
import { signToken, uniqueId } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { TestClient } from "../support/ws-client.js";

/**
 * Two deployments on one RabbitMQ vhost (issue #14): gateways a1 and a2 with
 * one DEPLOYMENT_ID, b1 with another. Before DEPLOYMENT_ID every gateway of
 * the vhost was one presence cluster: a1 listed b1's members, counted it as a
 * node and logged `presence: node removed` for it when it stopped.
 */
/** The `presence: node removed` log line naming `peer`. */
function removedLine(peer: string): RegExp {
  return new RegExp(`"peer":"${peer}"[^\\n]*"msg":"presence: node removed"`);
}

describe("presence of two deployments sharing one RabbitMQ vhost", () => {
  let vhost: RabbitVhost;
  let a1: PresenceGateway;
  let a2: PresenceGateway;
  let b1: PresenceGateway;
  let broker: amqp.ChannelModel;
  let backend: BackendPresenceWatch;
  const clients: TestClient[] = [];
  let pinger: NodeJS.Timeout | undefined;
  const run = uniqueId("pd").slice(3).toLowerCase();
  const deploymentA = `a-${run}`;
  const deploymentB = `b-${run}`;

  const connect = async (node: PresenceGateway, sub: string): Promise<TestClient> => {
    const client = await TestClient.connect(node.wsUrl, { token: await signToken({ sub, channels: ["room:*"], info: { name: sub } }) });
    clients.push(client);
    return client;
  };
  const metric = async (node: PresenceGateway, sample: RegExp): Promise<number> => {
    const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
    return Number(sample.exec(text)?.[1] ?? Number.NaN);
  };
  const presenceNodes = (node: PresenceGateway) => metric(node, /^sobranie_presence_nodes\{[^}]*\} (\d+)$/m);

  beforeAll(async () => {
    vhost = await createRabbitVhost("presence-deployments");
    [a1, a2, b1] = await Promise.all([
      startPresenceGateway(`a1-${run}`, vhost.url, deploymentA),
      startPresenceGateway(`a2-${run}`, vhost.url, deploymentA),
      startPresenceGateway(`b1-${run}`, vhost.url, deploymentB),
    ]);
    broker = await amqp.connect(vhost.url);
    backend = await BackendPresenceWatch.open(vhost.url);
    pinger = setInterval(() => {
      for (const client of clients) if (client.socket.readyState === client.socket.OPEN) client.socket.ping();
    }, PRESENCE_HEARTBEAT_MS);
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
    await backend?.close();
    await broker?.close().catch(() => {});
    await GatewayProcess.killAll();
    await vhost?.drop();
  });

  it("lists and counts only its own deployment's members and nodes", async () => {
    const channel = `room:shared${run}`;
    const bob = await connect(b1, `bob${run}`);
    await bob.request({ op: "subscribe", channel, presence: true });
    // b1 follows its delta with heartbeats on the same route: two of them later it has reached every queue on the vhost it would reach.
    await new Promise((resolve) => setTimeout(resolve, 2 * PRESENCE_HEARTBEAT_MS));
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
    await waitFor(() => backend.events.filter((event) => event.routingKey === key).length === 2, ACROSS_NODES_MS, "both joins published");
    const joins = backend.events.filter((event) => event.routingKey === key).map((event) => [event.body.data.user, event.body.data.deployment]);
    expect(joins.sort()).toEqual([
      [`alice${run}`, deploymentA],
      [`bob${run}`, deploymentB],
    ]);
  });

  it("drops a message of another deployment on its own exchange and counts it", async () => {
    const foreign = (node: PresenceGateway) => metric(node, /^sobranie_presence_messages_dropped_total\{reason="foreign"[^}]*\} (\d+)$/m);
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
