import { describe, expect, it } from "vitest";
import { AmqpNames } from "@sobranie/protocol/amqp";
import { type ClusterEnv, describeTallies, StayingClient, tally, Traffic, type ClusterNode, type TrafficChannels } from "../support/cluster-env.js";
import { clusterFaultSuite } from "../support/cluster-fault-suite.js";
import { PgAdmin } from "../support/pg-admin.js";
import type { RabbitCluster } from "../support/rabbit-cluster.js";
import { uniqueId } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";

// The active worker's RabbitMQ node dies under a steady durable stream; a
// standby worker connected to another node takes sobranie.persist over
// (single active consumer). Every durable event must be stored once and
// reach the connected client once, in order.

const SLOW_MS = 60_000;
const EVENTS_AFTER_FAULT = 150;

/** The worker whose consumer on sobranie.persist is the active one, from the broker (via a node that answers). */
async function activeWorker(cluster: RabbitCluster, env: ClusterEnv, via: number): Promise<string | undefined> {
  const consumers = await cluster.ctl(via, "list_consumers", "-p", env.vhost, "-q", "--no-table-headers", "queue_name", "channel_pid", "active");
  const active = consumers
    .split("\n")
    .map((line) => line.split("\t"))
    .find(([queue, , isActive]) => queue === AmqpNames.persistQueue && isActive === "true");
  if (!active) return undefined;
  const channels = await cluster.ctl(via, "list_channels", "-p", env.vhost, "-q", "--no-table-headers", "pid", "connection");
  const connection = channels
    .split("\n")
    .map((line) => line.split("\t"))
    .find(([pid]) => pid === active[1])?.[1];
  const connections = await cluster.ctl(via, "list_connections", "-p", env.vhost, "-q", "--no-table-headers", "pid", "client_properties");
  const line = connections.split("\n").find((entry) => entry.startsWith(`${connection}\t`));
  return /"connection_name","(sobranie-worker-[^"]+)"/.exec(line ?? "")?.[1];
}

function workerConnectionOf(node: ClusterNode): string {
  const id = /"nodeId":"(worker-[^"]+)"/.exec(node.process.stdout)?.[1];
  return `${AmqpNames.workerConnectionNamePrefix}${id}`;
}

describe("the active worker's RabbitMQ node dies", () => {
  const suite = clusterFaultSuite();

  it("the standby on another node takes over: every durable event stored and delivered once, in order", async () => {
    const { cluster } = suite;
    const env = await suite.createEnv("worker_failover");
    const active = await env.start("worker");
    const node = env.brokerOf(active, "persist queue");
    const others = [1, 2, 3].filter((n) => n !== node);
    const standby = await env.start("worker", { brokers: others });
    const gateway = await env.start("gateway", { brokers: others });
    await waitFor(async () => (await activeWorker(cluster, env, others[0]!)) === workerConnectionOf(active), SLOW_MS, "the first worker active");

    const user = uniqueId("u");
    const channels: TrafficChannels = { user: `user:${user}`, room: `room:${uniqueId("r")}`, post: `post:${uniqueId("p")}` };
    const client = await StayingClient.connect(gateway.wsUrl, channels, user);
    const keepAlive = setInterval(() => client.ping(), 10_000);
    suite.defer(() => clearInterval(keepAlive), () => client.close());
    const traffic = new Traffic(channels, env.urls());
    traffic.start();
    suite.defer(() => traffic.stop());
    await waitFor(() => client.events(channels.user).length >= 10, SLOW_MS, "traffic under way");

    const leader = (await cluster.queues(env.vhost, others[0]!)).find((queue) => queue.name === AmqpNames.persistQueue)?.leader;
    await cluster.kill(node);
    // After the kill returned: the node is gone for sure (the script waits for its process to end).
    const killedAtMs = Date.now();
    await waitFor(async () => (await activeWorker(cluster, env, others[0]!)) === workerConnectionOf(standby), SLOW_MS, "the standby active");
    const publishedAtKill = traffic.count();
    await waitFor(() => traffic.count() >= publishedAtKill + EVENTS_AFTER_FAULT, SLOW_MS, "traffic after the kill");
    await traffic.stop();
    const durable = [channels.user, channels.room];
    await waitFor(() => durable.every((channel) => client.events(channel).length >= traffic.published.get(channel)!.length), SLOW_MS, "every durable event");
    await client.client.request({ op: "ping" });
    const durableIds = durable.flatMap((channel) => traffic.published.get(channel)!);
    const afterKill = client.longestDeliveryMs(durableIds, traffic.calledAtMs, killedAtMs, Date.now());
    const firstAfterKill = Math.min(...durableIds.filter((id) => traffic.calledAtMs.get(id)! > killedAtMs).map((id) => client.firstArrivalMs.get(id)!));

    const db = await PgAdmin.connect(env.databaseUrl);
    suite.defer(() => db.close());
    const stored = async (channel: string) =>
      (await db.query<{ event_id: string }>(`select event_id from sobranie_event where channel = ? order by seq`, [channel])).map((row) => row.event_id);
    const tallies = Object.values(channels).map((channel) => tally(channel, traffic.published.get(channel)!, client.events(channel)));
    console.log(
      [
        `worker failover (SIGKILL of broker node ${node}, sobranie.persist leader ${leader === cluster.nodeName(node) ? "on it" : "elsewhere"}): the first durable event published after the kill reached the client ${firstAfterKill - killedAtMs} ms after it; longest publish-to-client time of those ${afterKill} ms`,
        describeTallies("  connected client", tallies),
      ].join("\n"),
    );
    for (const result of tallies.filter((t) => !t.channel.startsWith("post:"))) expect(result, result.channel).toMatchObject({ lost: 0, duplicated: 0, inOrder: true });
    for (const channel of durable) expect(await stored(channel)).toEqual(traffic.published.get(channel));
  });
});
