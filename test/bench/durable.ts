/**
 * Benchmark `durable`: persist-then-deliver against the non-durable path, side
 * by side in one run (issue 3). Nothing here asserts: it prints a table and,
 * with `--json FILE`, writes the numbers.
 *
 * Setup: a worker process (ROLE=worker) and a gateway process (ROLE=gateway)
 * on the real RabbitMQ and PostgreSQL, each run in a fresh vhost and database
 * so nothing else on the broker is disturbed. One WebSocket client per
 * channel, in this process: `user:b<i>` (durable: events → sobranie.persist →
 * worker → PostgreSQL → sobranie.live) and `post:b<i>` (events → live by the
 * exchange-to-exchange binding). The publisher is an amqplib confirm channel.
 *
 * Per path: (1) throughput — publish `--events` events as fast as confirms
 * allow and time until every one is received; (2) latency — `--rate` events/s
 * for `--seconds`, each stamped with its send time, receive − send.
 */
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import amqp from "amqplib";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { spawnTracked, stopChild } from "./children.js";
import { numberOption, sh, waitReady, writeJsonReport } from "./standalone.js";
import { LatencyHistogram, round } from "./stats.js";

const EVENTS = numberOption("events", 20_000);
const RATE = numberOption("rate", 500);
const SECONDS = numberOption("seconds", 10);
const CHANNELS = numberOption("channels", 20);

const SECRET = randomBytes(24).toString("hex");
const RUN = randomBytes(4).toString("hex");
const VHOST = `bench_durable_${RUN}`;
const DATABASE = `bench_durable_${RUN}`;
const RABBITMQ_URL = `amqp://guest:guest@127.0.0.1:5672/${VHOST}`;
const DATABASE_URL = `postgres://postgres@127.0.0.1:5432/${DATABASE}`;
const MAIN = fileURLToPath(new URL("../../src/main.js", import.meta.url));
const now = (): number => performance.timeOrigin + performance.now();

type Path = "durable" | "live";
const NAMESPACE: Record<Path, string> = { durable: "user", live: "post" };

interface PathResult {
  eventsPerSec: number;
  p50Ms: number | null;
  p99Ms: number | null;
  p999Ms: number | null;
  lost: number;
  duplicates: number;
}

function startNode(role: string, port: number): ReturnType<typeof spawnTracked> {
  return spawnTracked(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? "",
      ROLE: role,
      PORT: String(port),
      NODE_ID: `bench-${role}-${RUN}`,
      RABBITMQ_URL,
      DATABASE_URL,
      JWT_SECRET: SECRET,
      LOG_LEVEL: "warn",
      MAX_CONNECTIONS_PER_USER: "1000",
      RATE_CONNECTION_BURST: "100000",
      RATE_USER_BURST: "100000",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
}

/** Receipts per channel: event ids seen (to count duplicates) and the latency histogram of the current phase. */
class Receiver {
  histogram = new LatencyHistogram();
  received = 0;
  duplicates = 0;
  private readonly seen = new Set<string>();

  onEvent(frame: { id: string; data: { t?: number } }): void {
    if (this.seen.has(frame.id)) {
      this.duplicates += 1;
      return;
    }
    this.seen.add(frame.id);
    this.received += 1;
    if (typeof frame.data.t === "number") this.histogram.recordMs(now() - frame.data.t);
  }

  reset(): void {
    this.histogram = new LatencyHistogram();
  }
}

async function connectClients(port: number, receivers: Record<Path, Receiver>): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < CHANNELS; i++) {
    for (const path of ["durable", "live"] as const) {
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(`b${i}`)
        .setExpirationTime("1h")
        .sign(new TextEncoder().encode(SECRET));
      const ws = new WebSocket(`ws://127.0.0.1:${port}/realtime/ws?token=${token}`);
      await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
      const subscribed = new Promise<void>((resolve) =>
        ws.on("message", (raw) => {
          const frame = JSON.parse(String(raw)) as { op: string; ref?: number; id: string; data: { t?: number } };
          if (frame.op === "ok" && frame.ref === 1) resolve();
          if (frame.op === "event") receivers[path].onEvent(frame);
        }),
      );
      ws.send(JSON.stringify({ op: "subscribe", ref: 1, channel: `${NAMESPACE[path]}:b${i}` }));
      await subscribed;
      sockets.push(ws);
    }
  }
  return sockets;
}

async function publish(channel: amqp.ConfirmChannel, path: Path, index: number, phase: string): Promise<void> {
  const key = `${NAMESPACE[path]}.b${index % CHANNELS}.bench.tick`;
  const body = { id: `${phase}-${path}-${index}`, type: "bench.tick", data: { t: now() } };
  channel.publish("sobranie.events", key, Buffer.from(JSON.stringify(body)));
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}

async function runPath(channel: amqp.ConfirmChannel, path: Path, receiver: Receiver): Promise<PathResult> {
  // Throughput: confirms in windows of 1,000 keep the broker busy without an unbounded backlog.
  const startReceived = receiver.received;
  const started = now();
  for (let i = 0; i < EVENTS; i++) {
    await publish(channel, path, i, "max");
    if (i % 1_000 === 999) await channel.waitForConfirms();
  }
  await channel.waitForConfirms();
  const complete = await waitFor(() => receiver.received - startReceived >= EVENTS, 120_000);
  const eventsPerSec = ((receiver.received - startReceived) / (now() - started)) * 1000;
  const lostMax = EVENTS - (receiver.received - startReceived);
  if (!complete) console.error(`${path}: ${lostMax} events missing after 120 s`);

  // Latency at a fixed rate, open loop (each event stamped when it is sent).
  receiver.reset();
  const fixedStart = receiver.received;
  const total = RATE * SECONDS;
  const intervalMs = 1000 / RATE;
  const t0 = now();
  for (let i = 0; i < total; i++) {
    const due = t0 + i * intervalMs;
    const wait = due - now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    await publish(channel, path, i, "fixed");
  }
  await channel.waitForConfirms();
  await waitFor(() => receiver.received - fixedStart >= total, 60_000);
  return {
    eventsPerSec: Math.round(eventsPerSec),
    p50Ms: round(receiver.histogram.percentileMs(0.5)),
    p99Ms: round(receiver.histogram.percentileMs(0.99)),
    p999Ms: round(receiver.histogram.percentileMs(0.999)),
    lost: lostMax + (total - (receiver.received - fixedStart)),
    duplicates: receiver.duplicates,
  };
}

async function main(): Promise<void> {
  sh("rabbitmqctl", ["-q", "add_vhost", VHOST]);
  sh("rabbitmqctl", ["-q", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"]);
  sh("psql", ["-q", "-h", "127.0.0.1", "-U", "postgres", "-c", `create database ${DATABASE}`]);
  const workerPort = 18_000 + Math.floor(Math.random() * 1000);
  const gatewayPort = workerPort + 1;
  const worker = startNode("worker", workerPort);
  const gateway = startNode("gateway", gatewayPort);
  let sockets: WebSocket[] = [];
  let connection: amqp.ChannelModel | undefined;
  try {
    await Promise.all([waitReady(workerPort), waitReady(gatewayPort)]);
    const receivers: Record<Path, Receiver> = { durable: new Receiver(), live: new Receiver() };
    sockets = await connectClients(gatewayPort, receivers);
    connection = await amqp.connect(RABBITMQ_URL);
    const channel = await connection.createConfirmChannel();
    const results: Partial<Record<Path, PathResult>> = {};
    for (const path of ["live", "durable"] as const) results[path] = await runPath(channel, path, receivers[path]);
    const { durable, live } = results as Record<Path, PathResult>;
    const report = {
      at: new Date().toISOString(),
      config: { events: EVENTS, rate: RATE, seconds: SECONDS, channels: CHANNELS },
      scenarios: {
        durable: {
          live,
          durable,
          throughputRatio: round(durable.eventsPerSec / live.eventsPerSec),
          addedP50Ms: durable.p50Ms !== null && live.p50Ms !== null ? round(durable.p50Ms - live.p50Ms) : null,
          addedP99Ms: durable.p99Ms !== null && live.p99Ms !== null ? round(durable.p99Ms - live.p99Ms) : null,
        },
      },
    };
    console.log(`\npath     events/s  p50 ms   p99 ms   p99.9 ms  lost  duplicates   (latency at ${RATE}/s)`);
    for (const [name, r] of Object.entries(results) as Array<[Path, PathResult]>) {
      console.log(`${name.padEnd(8)} ${String(r.eventsPerSec).padStart(8)}  ${String(r.p50Ms).padStart(7)}  ${String(r.p99Ms).padStart(7)}  ${String(r.p999Ms).padStart(8)}  ${String(r.lost).padStart(4)}  ${String(r.duplicates).padStart(10)}`);
    }
    console.log(`durable/live throughput ${report.scenarios.durable.throughputRatio}; added latency p50 ${report.scenarios.durable.addedP50Ms} ms, p99 ${report.scenarios.durable.addedP99Ms} ms`);
    writeJsonReport(report);
  } finally {
    for (const socket of sockets) socket.terminate();
    await connection?.close().catch(() => {});
    await Promise.all([stopChild(gateway), stopChild(worker)]);
    sh("rabbitmqctl", ["-q", "delete_vhost", VHOST]);
    sh("psql", ["-q", "-h", "127.0.0.1", "-U", "postgres", "-c", `drop database if exists ${DATABASE} with (force)`]);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
