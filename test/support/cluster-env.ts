import amqp from "amqplib";
import { AmqpNames } from "@sobranie/protocol/amqp";
import { createPublisher, type Publisher } from "@sobranie/publisher";
import { startNode } from "./durable-env.js";
import type { GatewayProcess } from "./gateway-process.js";
import { PgAdmin, TEST_DATABASE_URL, uniqueName, withDatabase } from "./pg-admin.js";
import type { RabbitCluster } from "./rabbit-cluster.js";
import { signToken, uniqueId } from "./test-gateway.js";
import { waitFor } from "./wait-for.js";
import { TestClient, type Frame } from "./ws-client.js";

type ConnectionKind = "broker" | "persist queue" | "presence bus";

const CONNECTED_MESSAGES: Record<ConnectionKind, RegExp> = {
  broker: /"msg":"broker (connected|connection recovered)"/,
  "persist queue": /"msg":"persist queue consuming"/,
  "presence bus": /"msg":"presence bus connected"/,
};

/** A gateway or worker process of one ClusterEnv, with where it is connected now. */
export interface ClusterNode {
  readonly process: GatewayProcess;
  readonly port: number;
  readonly wsUrl: string;
  readonly httpUrl: string;
}

/** The settings every cluster test process gets; each test adds its own. */
const NODE_ENV = {
  PERSIST_MAX_BATCH: "50",
  BIND_LINGER_MS: "200",
  DRAIN_GRACE_MS: "2000",
  BROKER_LOSS_GRACE_MS: "3000",
} as const;

/**
 * One test's share of a RabbitCluster: a vhost of its own on the cluster and
 * a PostgreSQL database of its own, gateways and workers as whole processes
 * (so a broker node can die under them), and helpers to see which broker
 * node each of them is on.
 */
export class ClusterEnv {
  private readonly nodes: ClusterNode[] = [];

  private constructor(
    readonly cluster: RabbitCluster,
    readonly vhost: string,
    readonly database: string,
    readonly databaseUrl: string,
    private readonly server: PgAdmin,
  ) {}

  static async create(cluster: RabbitCluster, prefix: string): Promise<ClusterEnv> {
    const vhost = uniqueName(prefix);
    await cluster.addVhost(vhost);
    const server = await PgAdmin.connect(withDatabase(TEST_DATABASE_URL, "postgres"));
    await server.query(`create database "${vhost}"`);
    return new ClusterEnv(cluster, vhost, vhost, withDatabase(TEST_DATABASE_URL, vhost), server);
  }

  /** RABBITMQ_URL for this env's vhost: the given broker nodes (1-based), all three by default. */
  urls(nodes: readonly number[] = [1, 2, 3]): string {
    return nodes.map((node) => this.cluster.url(node, this.vhost)).join(",");
  }

  /** Starts a gateway or worker connected to `brokers` (all by default); resolves once it logged `ready`. */
  async start(role: "gateway" | "worker", options: { brokers?: readonly number[]; env?: Record<string, string> } = {}): Promise<ClusterNode> {
    const started = await startNode(role, { ...NODE_ENV, RABBITMQ_URL: this.urls(options.brokers), DATABASE_URL: this.databaseUrl, ...options.env });
    const node: ClusterNode = { process: started.node, port: started.port, wsUrl: `ws://127.0.0.1:${started.port}/realtime/ws`, httpUrl: started.url };
    this.nodes.push(node);
    return node;
  }

  /**
   * The broker node (1-based) `node`'s connection of `kind` went to most
   * recently, and when, from its logs: the gateway's node queue connection
   * (`broker connected` / `broker connection recovered`), the worker's persist
   * queue (`persist queue consuming`) or the presence bus.
   */
  connection(node: ClusterNode, kind: ConnectionKind = "broker"): { broker: number; atMs: number } {
    const line = node.process.stdout
      .split("\n")
      .filter((entry) => CONNECTED_MESSAGES[kind].test(entry))
      .at(-1);
    const port = /"broker":"127\.0\.0\.1:(\d+)\//.exec(line ?? "")?.[1];
    const index = this.cluster.urls.findIndex((url) => new URL(url).port === port);
    const time = /"time":"([^"]+)"/.exec(line ?? "")?.[1];
    if (index < 0 || time === undefined) throw new Error(`no ${kind} connection found in the logs of the process on port ${node.port}`);
    return { broker: index + 1, atMs: Date.parse(time) };
  }

  brokerOf(node: ClusterNode, kind: ConnectionKind = "broker"): number {
    return this.connection(node, kind).broker;
  }

  /** Waits until `node`'s `kind` connection is on a broker node other than `from`; returns where and when it connected. */
  async movedOff(node: ClusterNode, from: number, timeoutMs: number, kind: ConnectionKind = "broker"): Promise<{ broker: number; atMs: number }> {
    await waitFor(() => this.brokerOf(node, kind) !== from, timeoutMs, `the ${kind} connection to leave broker node ${from}`);
    return this.connection(node, kind);
  }

  /** Waits for `node` to log `message`; resolves with the time of the last such line. */
  async loggedAt(node: ClusterNode, message: string, timeoutMs: number): Promise<number> {
    const last = (): string | undefined =>
      node.process.stdout
        .split("\n")
        .filter((line) => line.includes(`"msg":${JSON.stringify(message)}`))
        .at(-1);
    await waitFor(() => last() !== undefined, timeoutMs, `the log line "${message}"`);
    return Date.parse(/"time":"([^"]+)"/.exec(last()!)?.[1] ?? "");
  }

  /** The last `lines` log lines of every process, for a failed test's output. */
  logs(lines = 60): string {
    return this.nodes
      .map((node) => `--- process on port ${node.port} ---\n${node.process.stdout.trim().split("\n").slice(-lines).join("\n")}\n${node.process.stderr.trim()}`)
      .join("\n");
  }

  /** Kills every process of this env, drops its database and vhost. */
  async close(): Promise<void> {
    for (const node of this.nodes) node.process.kill("SIGKILL");
    await Promise.all(this.nodes.map((node) => node.process.exited));
    await this.server.query(`drop database if exists "${this.database}" with (force)`).catch(() => {});
    await this.server.close();
    await this.cluster.ctl(1, "delete_vhost", this.vhost).catch(() => undefined);
  }
}

/** The three kinds of channel a client can hold, as the guarantees differ by kind. */
export interface TrafficChannels {
  /** Durable, self-subscribed: the notification inbox. */
  readonly user: string;
  /** Durable, by claim. */
  readonly room: string;
  /** Not durable: live only. */
  readonly post: string;
}

/**
 * A backend publishing a steady stream through the publisher SDK (to every
 * broker node in rotation, as a backend would), round-robin over the three
 * channels, each publish awaited. `published` holds each channel's ids in
 * confirm order; a publish the SDK gave up on is left out.
 */
export class Traffic {
  readonly published = new Map<string, string[]>();
  /** When each event's publish was called (ms since the epoch), by id. */
  readonly calledAtMs = new Map<string, number>();
  private readonly publisher: Publisher;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly base = uniqueId("t");

  constructor(
    readonly channels: TrafficChannels,
    urls: string,
    private readonly pauseMs = 10,
  ) {
    this.publisher = createPublisher({ url: urls, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
    for (const channel of Object.values(channels)) this.published.set(channel, []);
  }

  start(): void {
    this.running ??= (async () => {
      const order = Object.values(this.channels);
      for (let n = 0; !this.stopped; n++) {
        const channel = order[n % order.length]!;
        const id = `${this.base}-${String(n).padStart(6, "0")}`;
        try {
          this.calledAtMs.set(id, Date.now());
          await this.publisher.publish(channel, "tick", { n }, { id });
          this.published.get(channel)!.push(id);
        } catch {
          // Refused (buffer full, abandoned): not counted as published.
        }
        await new Promise((resolve) => setTimeout(resolve, this.pauseMs));
      }
    })();
  }

  count(): number {
    let total = 0;
    for (const ids of this.published.values()) total += ids.length;
    return total;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
    await this.publisher.close({ timeoutMs: 5_000 });
  }
}

/**
 * Durable events to one channel at a steady rate, pipelined (up to
 * `inFlight` unconfirmed) on one amqplib confirm channel: enough traffic for
 * RabbitMQ's credit flow to matter, which Traffic (one publish at a time) is
 * not. `published` holds the confirmed ids in publish order.
 */
export class DurableLoad {
  readonly published: string[] = [];
  readonly calledAtMs = new Map<string, number>();
  private stopped = false;
  private running: Promise<void> | undefined;

  private constructor(
    private readonly connection: amqp.ChannelModel,
    private readonly channel: amqp.ConfirmChannel,
    readonly target: string,
  ) {}

  static async open(url: string, target: string): Promise<DurableLoad> {
    const connection = await amqp.connect(url);
    connection.on("error", () => {});
    const channel = await connection.createConfirmChannel();
    channel.on("error", () => {});
    return new DurableLoad(connection, channel, target);
  }

  start(perSecond: number, inFlight = 100): void {
    const base = uniqueId("load");
    const [namespace, id] = this.target.split(":");
    this.running ??= (async () => {
      const outstanding = new Set<Promise<void>>();
      const confirmed = new Map<number, string>();
      for (let n = 0; !this.stopped; n++) {
        while (outstanding.size >= inFlight) await Promise.race(outstanding);
        const eventId = `${base}-${String(n).padStart(6, "0")}`;
        this.calledAtMs.set(eventId, Date.now());
        const body = Buffer.from(JSON.stringify({ id: eventId, type: "tick", data: { n } }));
        const done = new Promise<void>((resolve) =>
          this.channel.publish(AmqpNames.eventsExchange, `${namespace}.${id}.tick`, body, { persistent: true, messageId: eventId }, (error) => {
            if (!error) confirmed.set(n, eventId);
            resolve();
          }),
        ).finally(() => outstanding.delete(done));
        outstanding.add(done);
        await new Promise((resolve) => setTimeout(resolve, 1_000 / perSecond));
      }
      await Promise.all(outstanding);
      this.published.push(...[...confirmed.entries()].sort(([a], [b]) => a - b).map(([, eventId]) => eventId));
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
    await this.connection.close().catch(() => {});
  }
}

/** A connected client holding one subscription per channel kind; it never reconnects. */
export class StayingClient {
  /** When each event frame arrived (ms since the epoch), in arrival order. */
  readonly eventTimesMs: number[] = [];
  /** When each event id first arrived. */
  readonly firstArrivalMs = new Map<string, number>();

  private constructor(
    readonly client: TestClient,
    readonly channels: TrafficChannels,
  ) {
    client.socket.on("message", (data, isBinary) => {
      const text = String(data);
      if (isBinary || !text.startsWith('{"op":"event"')) return;
      const atMs = Date.now();
      this.eventTimesMs.push(atMs);
      const id = (JSON.parse(text) as { id: string }).id;
      if (!this.firstArrivalMs.has(id)) this.firstArrivalMs.set(id, atMs);
    });
  }

  static async connect(wsUrl: string, channels: TrafficChannels, user: string): Promise<StayingClient> {
    const client = await TestClient.connect(wsUrl, { token: await signToken({ sub: user, channels: ["room:*"], expiresInSec: 3_600 }) });
    const staying = new StayingClient(client, channels);
    for (const channel of Object.values(channels)) {
      const ok = await client.request({ op: "subscribe", channel }, 20_000);
      if (ok.op !== "ok") throw new Error(`subscribe ${channel} refused: ${JSON.stringify(ok)}`);
    }
    return staying;
  }

  /** Keeps the session alive across a long test (a silent one closes 4008 after PRESENCE_TTL_MS). */
  ping(): void {
    if (this.client.socket.readyState === this.client.socket.OPEN) this.client.send({ op: "ping" });
  }

  events(channel: string): Frame[] {
    return this.client.events(channel);
  }

  gaps(channel: string): Frame[] {
    return this.client.frames.filter((frame) => frame.op === "gap" && frame.channel === channel);
  }

  reconnects(): Frame[] {
    return this.client.frames.filter((frame) => frame.op === "reconnect");
  }

  /** When the first event arrived after `sinceMs`; undefined if none has. */
  firstEventAfter(sinceMs: number): number | undefined {
    return this.eventTimesMs.find((atMs) => atMs > sinceMs);
  }

  /**
   * The longest time from a publish call to this client's receipt, over the
   * events of `ids` whose publish was called between `fromMs` and `toMs`.
   * Unlike the gaps between arrivals, a stalled publisher does not count.
   */
  longestDeliveryMs(ids: readonly string[], calledAtMs: ReadonlyMap<string, number>, fromMs: number, toMs: number): number {
    let longest = 0;
    for (const id of ids) {
      const called = calledAtMs.get(id);
      const arrived = this.firstArrivalMs.get(id);
      if (called === undefined || called < fromMs || called > toMs) continue;
      longest = Math.max(longest, (arrived ?? Number.POSITIVE_INFINITY) - called);
    }
    return longest;
  }

  /** The longest stretch without an event between `fromMs` and `toMs`. */
  longestSilenceMs(fromMs: number, toMs: number): number {
    let previous = fromMs;
    let longest = 0;
    for (const atMs of this.eventTimesMs) {
      if (atMs < fromMs) continue;
      if (atMs > toMs) break;
      longest = Math.max(longest, atMs - previous);
      previous = atMs;
    }
    return Math.max(longest, toMs - previous);
  }

  close(): void {
    this.client.close();
  }
}

/** What one client saw of one channel, against what was published. */
export interface Tally {
  readonly channel: string;
  readonly published: number;
  readonly lost: number;
  readonly duplicated: number;
  /** True when the unique ids arrived in publish order. */
  readonly inOrder: boolean;
}

export function tally(channel: string, published: readonly string[], events: readonly Frame[]): Tally {
  const seen = new Set<string>();
  let duplicated = 0;
  const firstCopies: string[] = [];
  for (const frame of events) {
    const id = String(frame.id);
    if (seen.has(id)) duplicated += 1;
    else firstCopies.push(id);
    seen.add(id);
  }
  const expected = new Set(published);
  const lost = published.filter((id) => !seen.has(id)).length;
  const order = firstCopies.filter((id) => expected.has(id));
  const inOrder = order.every((id, i) => i === 0 || published.indexOf(order[i - 1]!) < published.indexOf(id));
  return { channel, published: published.length, lost, duplicated, inOrder };
}

/** One line per channel kind, for the test's printed report. */
export function describeTallies(label: string, tallies: readonly Tally[]): string {
  return `${label}: ${tallies.map((t) => `${t.channel.split(":")[0]} ${t.published} published, lost ${t.lost}, duplicated ${t.duplicated}${t.inOrder ? "" : ", OUT OF ORDER"}`).join("; ")}`;
}
