/**
 * Benchmark `failover`: a RabbitMQ node is killed under a gateway and started
 * again at once (a crash and its supervisor's restart), with the gateway
 * reaching the cluster three ways, side by side in one run:
 *
 * - `single URL`: RABBITMQ_URL names the one node (the baseline: the gateway
 *   waits for that node to come back);
 * - `URL list`: RABBITMQ_URL lists the three nodes, tried in rotation;
 * - `TCP proxy`: one URL of nginx's stream module balancing over the three.
 *
 * Per round: a private three-node cluster (test/support/rabbitmq-cluster.sh),
 * a fresh vhost and database, the gateway, then a worker and a backend
 * (publisher SDK) on the two other nodes, so what is measured is the
 * gateway's own recovery. One client stays connected with a `user:`, a
 * `room:` (durable) and a `post:` (live only) subscription. Measured: time
 * from the kill to the first event published after it reaching the client,
 * and what that client lost or got twice per namespace kind. Prints a table;
 * asserts nothing.
 *
 *   npm run bench:failover -- [--rounds N] [--json FILE]
 */
import { ClusterEnv, StayingClient, tally, Traffic, type Tally, type TrafficChannels } from "../support/cluster-env.js";
import { RabbitCluster } from "../support/rabbit-cluster.js";
import { TcpBalancer } from "../support/tcp-balancer.js";
import { uniqueId } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { numberOption, writeJsonReport } from "./standalone.js";

const ROUNDS = numberOption("rounds", 3);
/** Events published after the gateway is back before the round ends. */
const EVENTS_AFTER_RECOVERY = 90;
const SLOW_MS = 120_000;

type Mode = "single URL" | "URL list" | "TCP proxy";
const MODES: readonly Mode[] = ["single URL", "URL list", "TCP proxy"];

interface Round {
  readonly mode: Mode;
  readonly killed: number;
  /** Kill → first event published after the kill arriving at the client. */
  readonly firstEventMs: number;
  /** Kill → the killed node running again (the single URL gateway cannot recover before). */
  readonly nodeBackMs: number;
  readonly tallies: readonly Tally[];
  readonly gaps: number;
}

const log = (line: string): void => void process.stdout.write(`${line}\n`);

/** The broker node a gateway's node-queue connection is on, from the cluster (the proxy hides it from the gateway). */
async function nodeOfGateway(cluster: RabbitCluster, env: ClusterEnv, gatewayStdout: string): Promise<number> {
  const nodeId = /"nodeId":"([^"]+)"/.exec(gatewayStdout)?.[1];
  const lines = await cluster.ctl(1, "list_connections", "-p", env.vhost, "-q", "--no-table-headers", "pid", "client_properties");
  const line = lines.split("\n").find((entry) => entry.includes(`{"connection_name","sobranie-gateway-${nodeId}"}`));
  // A connection's pid names the node it lives on: <sobr…n2@localhost.1.2.3>.
  const name = /^<([^.>]+@[^.>]+)\./.exec(line ?? "")?.[1];
  const index = [1, 2, 3].find((node) => cluster.nodeName(node) === name);
  if (index === undefined) throw new Error(`no broker connection of gateway ${nodeId} found`);
  return index;
}

async function round(cluster: RabbitCluster, mode: Mode, number: number): Promise<Round> {
  const env = await ClusterEnv.create(cluster, `bench_failover_${number}`);
  let balancer: TcpBalancer | undefined;
  const cleanups: Array<() => unknown> = [];
  try {
    let gatewayUrl: string;
    if (mode === "single URL") gatewayUrl = env.urls([1 + (number % 3)]);
    else if (mode === "URL list") gatewayUrl = env.urls();
    else {
      balancer = await TcpBalancer.start(cluster.urls.map((url) => Number(new URL(url).port)));
      gatewayUrl = balancer.url(env.vhost);
    }
    const gateway = await env.start("gateway", { env: { RABBITMQ_URL: gatewayUrl, LOG_LEVEL: "info" } });
    const killed = await nodeOfGateway(cluster, env, gateway.process.stdout);
    const others = [1, 2, 3].filter((node) => node !== killed);
    await env.start("worker", { brokers: others });

    const user = uniqueId("u");
    const channels: TrafficChannels = { user: `user:${user}`, room: `room:${uniqueId("r")}`, post: `post:${uniqueId("p")}` };
    const client = await StayingClient.connect(gateway.wsUrl, channels, user);
    const keepAlive = setInterval(() => client.ping(), 10_000);
    cleanups.push(() => clearInterval(keepAlive), () => client.close());
    const traffic = new Traffic(channels, env.urls(others));
    traffic.start();
    cleanups.push(() => traffic.stop());
    await waitFor(() => client.events(channels.user).length >= 10, SLOW_MS, "traffic under way");

    // Timed from the kill's return, when the node is gone for sure (the script waits for its process to end).
    await cluster.kill(killed);
    const killedAtMs = Date.now();
    const revived = cluster.revive(killed).then(() => Date.now() - killedAtMs);
    const afterKill = (): string[] => [...traffic.calledAtMs].filter(([, atMs]) => atMs > killedAtMs).map(([id]) => id);
    await waitFor(() => afterKill().some((id) => client.firstArrivalMs.has(id)), SLOW_MS, "an event published after the kill at the client");
    const firstEventMs = Math.min(...afterKill().map((id) => client.firstArrivalMs.get(id) ?? Number.POSITIVE_INFINITY)) - killedAtMs;
    const nodeBackMs = await revived;
    const published = traffic.count();
    await waitFor(() => traffic.count() >= published + EVENTS_AFTER_RECOVERY, SLOW_MS, "traffic after the recovery");
    await traffic.stop();
    const durable = [channels.user, channels.room];
    await waitFor(() => durable.every((channel) => client.events(channel).length >= traffic.published.get(channel)!.length), SLOW_MS, "every durable event").catch(() => undefined);
    await client.client.request({ op: "ping" });
    const tallies = Object.values(channels).map((channel) => tally(channel, traffic.published.get(channel)!, client.events(channel)));
    await cluster.waitForRunning(3, SLOW_MS);
    return { mode, killed, firstEventMs, nodeBackMs, tallies, gaps: client.gaps(channels.post).length };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await env.close();
    await balancer?.stop();
  }
}

function kind(result: Round, namespace: string): string {
  const found = result.tallies.find((entry) => entry.channel.startsWith(`${namespace}:`));
  return found ? `${found.lost}/${found.duplicated}${found.inOrder ? "" : " (out of order)"}` : "-";
}

async function main(): Promise<void> {
  log(`bench failover: ${ROUNDS} round(s) per mode; starting a three-node RabbitMQ cluster`);
  const cluster = await RabbitCluster.start();
  const rounds: Round[] = [];
  try {
    for (let number = 0; number < ROUNDS; number++) {
      for (const mode of MODES) {
        const result = await round(cluster, mode, number);
        rounds.push(result);
        log(`  ${mode}, round ${number + 1}: node ${result.killed} killed; first event again after ${result.firstEventMs} ms (node back after ${result.nodeBackMs} ms); lost/dup user ${kind(result, "user")}, room ${kind(result, "room")}, post ${kind(result, "post")}; gap frames ${result.gaps}`);
      }
    }
  } finally {
    await cluster.stop();
  }
  log("\n| gateway reaches the cluster by | first event again after a node kill (ms, each round) | node back (ms) | user lost/dup | room lost/dup | post lost/dup | gap frames (post) |");
  log("|---|---|---|---|---|---|---|");
  for (const mode of MODES) {
    const of = rounds.filter((result) => result.mode === mode);
    const join = (pick: (result: Round) => string | number) => of.map(pick).join(", ");
    log(`| ${mode} | ${join((r) => r.firstEventMs)} | ${join((r) => r.nodeBackMs)} | ${join((r) => kind(r, "user"))} | ${join((r) => kind(r, "room"))} | ${join((r) => kind(r, "post"))} | ${join((r) => r.gaps)} |`);
  }
  writeJsonReport({ rounds });
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failover failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
