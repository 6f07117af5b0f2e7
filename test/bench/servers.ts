import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import amqp from "amqplib";
import { forkBench, PublisherHandle, spawnTracked, stopChild } from "./children.js";
import type { PublisherSetup, Wire } from "./ipc.js";

export type ScenarioName = "gateway" | "rawUws" | "amqpUws" | "seedWs";

/** A server under test, ready for clients, with the publisher that feeds it. */
export interface ServerHandle {
  name: ScenarioName;
  wsUrl: string;
  jwtSecret: string | null;
  /** The protocol `wsUrl` speaks. */
  wire: Wire;
  publisher: PublisherHandle;
  /** Processes whose CPU is reported (`server`, and `publisher` / `broker` where they exist). */
  pids: Record<string, number[]>;
  notes: string[];
  /** `null` while the server process runs; how it ended otherwise (it should never end before `stop`). */
  exitStatus(): string | null;
  stop(): Promise<void>;
}

export interface ServerContext {
  runId: string;
  channelCount: number;
  bodyBytes: number;
  hardTimeoutMs: number;
  rabbitUrl: string;
  logDir: string;
  /** Extra env for the gateway (`--gateway-env KEY=VALUE`), applied last. */
  gatewayEnv: Record<string, string>;
  /** Node options for every gateway process (`--gateway-node-args`). */
  gatewayNodeArgs: string[];
  /** Run the seedWs server in the gateway's place (to exercise the harness before the gateway exists). */
  gatewayStub: boolean;
  brokerPid: number | null;
}

const EVENTS_EXCHANGE = "sobranie.events";
/** The gateway's hop between the events exchange and its node queues (docs/protocol.md §3). */
const LIVE_EXCHANGE = "sobranie.live";
/** Only used by seedWs when no gateway has declared the real exchange: auto-deleted with its last binding. */
const FALLBACK_EXCHANGE = "bench.sobranie.events";
const READY_TIMEOUT_MS = 30_000;
const TIMEOUT_BIN = "/usr/bin/timeout";

interface SpawnedServer {
  child: ChildProcess;
  /** The node process (below `timeout`), for CPU metering. */
  pid: number;
}

const gatewayMain = fileURLToPath(new URL("../../src/main.js", import.meta.url));
const amqpUwsMain = fileURLToPath(new URL("./server-amqp-uws.js", import.meta.url));
const seedMain = fileURLToPath(new URL("./server-seed-ws.js", import.meta.url));
const plainMain = fileURLToPath(new URL("./server-ws-plain.js", import.meta.url));

export async function startRawUws(context: ServerContext): Promise<ServerHandle> {
  const setup: PublisherSetup = { runId: context.runId, channelCount: context.channelCount, bodyBytes: context.bodyBytes, hardTimeoutMs: context.hardTimeoutMs };
  const child = forkBench("./server-uws.js", [JSON.stringify(setup)]);
  const publisher = new PublisherHandle(child);
  try {
    const { port } = await publisher.ready(READY_TIMEOUT_MS);
    return {
      name: "rawUws",
      wsUrl: `ws://127.0.0.1:${port}/ws`,
      jwtSecret: null,
      wire: "native",
      publisher,
      pids: { server: [child.pid ?? 0] },
      notes: ["server publishes in-process (app.publish); no broker, no publisher process"],
      exitStatus: () => exitStatus(child),
      stop: async () => {
        publisher.send({ type: "exit" });
        await stopChild(child, 3000);
      },
    };
  } catch (error) {
    await stopChild(child, 1000);
    throw error;
  }
}

/** The real gateway (`node dist/src/main.js`), or with `gatewayStub` the seedWs server started the same way. */
export async function startGateway(context: ServerContext): Promise<ServerHandle> {
  if (!context.gatewayStub && !existsSync(gatewayMain)) {
    throw new Error(`gateway not built: ${gatewayMain} does not exist (run npm run build once src/main.ts exists)`);
  }
  const port = await freePort();
  const jwtSecret = randomBytes(24).toString("hex");
  const stubExchange = context.gatewayStub ? await resolveExchange(context.rabbitUrl) : null;
  const env: Record<string, string> = {
    ...gatewayEnv(context, port, jwtSecret),
    ...(stubExchange === null ? {} : stubEnv(stubExchange, context)),
    ...context.gatewayEnv,
  };
  const server = await spawnServer(context.gatewayStub ? seedMain : gatewayMain, env, port, context, "gateway", context.gatewayStub ? [] : context.gatewayNodeArgs);
  const exchange = stubExchange ?? EVENTS_EXCHANGE;
  const notes = context.gatewayStub ? ["STUB: seedWs server in the gateway's place (--gateway-stub); not the gateway"] : [`ROLE=gateway NODE_ID=${env.NODE_ID}`];
  return withAmqpPublisher("gateway", server, port, jwtSecret, exchange, context, notes);
}

/** The gateway's bench env: limits raised so that none shapes what is measured. */
function gatewayEnv(context: ServerContext, port: number, jwtSecret: string): Record<string, string> {
  return {
    PORT: String(port),
    RABBITMQ_URL: context.rabbitUrl,
    JWT_SECRET: jwtSecret,
    NODE_ID: `bench-${context.runId}`,
    ROLE: "gateway",
    LOG_LEVEL: "warn",
    MAX_CONNECTIONS_PER_USER: "100000",
    // Each client sends one subscribe and a ping per half heartbeat: far under
    // the defaults. Raised anyway so no limit can shape what is measured.
    RATE_CONNECTION_PER_SEC: "1000",
    RATE_CONNECTION_BURST: "2000",
    RATE_USER_PER_SEC: "1000",
    RATE_USER_BURST: "2000",
    // Clients have closed before the runner stops the gateway: no drain to wait for.
    DRAIN_GRACE_MS: "0",
    SHUTDOWN_TIMEOUT_MS: "5000",
  };
}

/** A server process alone (no publisher child), for the idle, connect, ingress and recovery scenarios. */
export interface ProcessHandle {
  port: number;
  wsUrl: string;
  jwtSecret: string | null;
  /** The node process itself (below `timeout`): what RSS and CPU are read from. */
  pid: number;
  exitStatus(): string | null;
  stop(): Promise<void>;
}

/**
 * `node dist/src/main.js` with the bench env, then `env` (a scenario's own
 * settings), then `--gateway-env`. With `ROLE=worker` in `env` it is a worker.
 */
export async function startGatewayProcess(context: ServerContext, env: Record<string, string>, label: string): Promise<ProcessHandle> {
  const port = await freePort();
  const jwtSecret = env.JWT_SECRET ?? randomBytes(24).toString("hex");
  const server = await spawnServer(gatewayMain, { ...gatewayEnv(context, port, jwtSecret), NODE_ID: `bench-${label}-${context.runId}`, ...env, ...context.gatewayEnv }, port, context, label, context.gatewayNodeArgs);
  return processHandle(server, port, `ws://127.0.0.1:${port}/realtime/ws`, jwtSecret);
}

/** The plain `ws` baseline server (server-ws-plain.ts): accepts connections, sends nothing. */
export async function startPlainWs(context: ServerContext): Promise<ProcessHandle> {
  const port = await freePort();
  const env = { PORT: String(port), BENCH_HARD_TIMEOUT_MS: String(context.hardTimeoutMs) };
  const server = await spawnServer(plainMain, env, port, context, "plainWs");
  return processHandle(server, port, `ws://127.0.0.1:${port}/realtime/ws`, null);
}

function processHandle(server: SpawnedServer, port: number, wsUrl: string, jwtSecret: string | null): ProcessHandle {
  return {
    port,
    wsUrl,
    jwtSecret,
    pid: server.pid,
    exitStatus: () => exitStatus(server.child),
    stop: () => stopChild(server.child, 15_000, server.pid),
  };
}

export async function startSeedWs(context: ServerContext): Promise<ServerHandle> {
  const port = await freePort();
  const exchange = await resolveExchange(context.rabbitUrl);
  const env = { PORT: String(port), RABBITMQ_URL: context.rabbitUrl, ...stubEnv(exchange, context) };
  const server = await spawnServer(seedMain, env, port, context, "seedWs");
  return withAmqpPublisher("seedWs", server, port, null, exchange, context, [`ws server fed by amqplib from ${exchange}`]);
}

/**
 * Bare uWS fed by RabbitMQ like the gateway: through the gateway's
 * `sobranie.live` hop when a gateway has declared it (the same broker work per
 * event), else straight from the events exchange.
 */
export async function startAmqpUws(context: ServerContext): Promise<ServerHandle> {
  const port = await freePort();
  const exchange = await resolveExchange(context.rabbitUrl);
  const bindTo = exchange === EVENTS_EXCHANGE && (await exchangeExists(context.rabbitUrl, LIVE_EXCHANGE)) ? LIVE_EXCHANGE : exchange;
  const env = { PORT: String(port), RABBITMQ_URL: context.rabbitUrl, ...stubEnv(bindTo, context) };
  const server = await spawnServer(amqpUwsMain, env, port, context, "amqpUws");
  return withAmqpPublisher("amqpUws", server, port, null, exchange, context, [`bare uWS fed by amqplib from ${bindTo} (manual acks, prefetch 1000)`]);
}

function stubEnv(exchange: string, context: ServerContext): Record<string, string> {
  return {
    BENCH_EXCHANGE: exchange,
    BENCH_CREATE_EXCHANGE: exchange === FALLBACK_EXCHANGE ? "1" : "0",
    BENCH_HARD_TIMEOUT_MS: String(context.hardTimeoutMs),
  };
}

async function withAmqpPublisher(
  name: ScenarioName,
  server: SpawnedServer,
  port: number,
  jwtSecret: string | null,
  exchange: string,
  context: ServerContext,
  notes: string[],
): Promise<ServerHandle> {
  let feed: AmqpPublisher;
  try {
    feed = await startAmqpPublisher(context, exchange);
  } catch (error) {
    await stopChild(server.child, 15_000, server.pid);
    throw error;
  }
  const pids: Record<string, number[]> = { server: [server.pid], publisher: [feed.pid] };
  if (context.brokerPid !== null) pids.broker = [context.brokerPid];
  return {
    name,
    wsUrl: `ws://127.0.0.1:${port}/realtime/ws`,
    jwtSecret,
    wire: "native",
    publisher: feed.publisher,
    pids,
    notes: [...notes, `exchange ${exchange}`],
    exitStatus: () => exitStatus(server.child),
    stop: async () => void (await Promise.all([feed.stop(), stopChild(server.child, 15_000, server.pid)])),
  };
}

/**
 * A gateway process that keeps running (startGatewayProcess) as the server
 * of one fan-out run, on `wire` at `wsUrl`, fed by a publisher of its own
 * under `context.runId`: the run's `stop()` ends that publisher only, so runs
 * (each with its own runId: the gateway drops an event id it has seen) can
 * take turns on one gateway process.
 */
export async function gatewayRun(gateway: ProcessHandle, wire: Wire, wsUrl: string, context: ServerContext): Promise<ServerHandle> {
  const feed = await startAmqpPublisher(context, EVENTS_EXCHANGE);
  const pids: Record<string, number[]> = { server: [gateway.pid], publisher: [feed.pid] };
  if (context.brokerPid !== null) pids.broker = [context.brokerPid];
  return {
    name: "gateway",
    wsUrl,
    jwtSecret: wire === "native" ? gateway.jwtSecret : null,
    wire,
    publisher: feed.publisher,
    pids,
    notes: [`${wire} wire, run ${context.runId}`],
    exitStatus: gateway.exitStatus,
    stop: feed.stop,
  };
}

interface AmqpPublisher {
  publisher: PublisherHandle;
  pid: number;
  stop(): Promise<void>;
}

/** publisher-amqp.ts for `context`'s channels and runId, once it is connected to the broker. */
async function startAmqpPublisher(context: ServerContext, exchange: string): Promise<AmqpPublisher> {
  const setup = { runId: context.runId, channelCount: context.channelCount, bodyBytes: context.bodyBytes, hardTimeoutMs: context.hardTimeoutMs, rabbitUrl: context.rabbitUrl, exchange };
  const child = forkBench("./publisher-amqp.js", [JSON.stringify(setup)]);
  const publisher = new PublisherHandle(child);
  const stop = async (): Promise<void> => {
    publisher.send({ type: "exit" });
    await stopChild(child, 3000);
  };
  try {
    await publisher.ready(READY_TIMEOUT_MS);
  } catch (error) {
    await stop();
    throw error;
  }
  return { publisher, pid: child.pid ?? 0, stop };
}

/** Spawns a server process with its output in a log file; resolves when `GET /readyz` answers 200. */
async function spawnServer(main: string, env: Record<string, string>, port: number, context: ServerContext, label: string, nodeArgs: string[] = []): Promise<SpawnedServer> {
  mkdirSync(context.logDir, { recursive: true });
  const logPath = join(context.logDir, `${label}-${context.runId}.log`);
  const log = openSync(logPath, "a");
  // The gateway must not outlive a runner that was killed: coreutils `timeout`
  // bounds it (and forwards our SIGTERM). stdin stays an open pipe: the seed
  // server also exits when it closes.
  const seconds = String(Math.ceil(context.hardTimeoutMs / 1000));
  const [command, args] = existsSync(TIMEOUT_BIN) ? [TIMEOUT_BIN, ["-k", "10", seconds, process.execPath, ...nodeArgs, main]] : [process.execPath, [...nodeArgs, main]];
  const child = spawnTracked(command, args, { env: { ...process.env, ...env }, stdio: ["pipe", log, log] });
  closeSync(log);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    if (await isReady(port)) return { child, pid: nodePid(child) };
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const exited = child.exitCode !== null || child.signalCode !== null;
  await stopChild(child, 2000, nodePid(child));
  const tail = readFileSync(logPath, "utf8").trim().split("\n").slice(-15).join("\n    ");
  throw new Error(`${label} ${exited ? `exited (code ${child.exitCode})` : `not ready within ${READY_TIMEOUT_MS} ms`}; log ${logPath}:\n    ${tail}`);
}

function exitStatus(child: ChildProcess): string | null {
  if (child.signalCode !== null) return `killed by ${child.signalCode}`;
  return child.exitCode === null ? null : `exited with code ${child.exitCode}`;
}

/** The node process itself, below `timeout` when it is wrapped: its CPU is what gets metered. */
function nodePid(child: ChildProcess): number {
  const pid = child.pid ?? 0;
  if (!child.spawnargs[0]?.endsWith("timeout")) return pid;
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).map(Number).filter((value) => value > 0);
    return children[0] ?? pid;
  } catch {
    return pid;
  }
}

async function isReady(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** The real events exchange when a gateway has declared it, else the bench-only fallback. */
async function resolveExchange(rabbitUrl: string): Promise<string> {
  return (await exchangeExists(rabbitUrl, EVENTS_EXCHANGE)) ? EVENTS_EXCHANGE : FALLBACK_EXCHANGE;
}

async function exchangeExists(rabbitUrl: string, name: string): Promise<boolean> {
  const connection = await amqp.connect(rabbitUrl);
  try {
    const channel = await connection.createChannel();
    channel.on("error", () => undefined);
    await channel.checkExchange(name);
    return true;
  } catch {
    return false;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** A port the kernel just handed out: there is a small window for a race, acceptable for a benchmark. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}
