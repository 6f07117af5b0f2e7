import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { waitFor } from "./wait-for.js";

const run = promisify(execFile);

/** Next to this file under vitest; from the compiled copy in dist/ (the benchmarks), back in the source tree. */
export const CLUSTER_SCRIPT = [new URL("./rabbitmq-cluster.sh", import.meta.url), new URL("../../../test/support/rabbitmq-cluster.sh", import.meta.url)]
  .map((url) => fileURLToPath(url))
  .find((path) => existsSync(path)) as string;

export const NODE_COUNT = 3;

/** Outer bounds of each script call; inside, the script bounds every wait of its own (a boot 60 s, a rabbitmqctl call CTL_TIMEOUT_S). */
const START_TIMEOUT_MS = 180_000;
const REVIVE_TIMEOUT_MS = 150_000;
const SIGNAL_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 30_000;
const CTL_TIMEOUT_S = 20;
const CTL_CALL_TIMEOUT_MS = (CTL_TIMEOUT_S + 10) * 1_000;

/**
 * Base ports are drawn below Linux's ephemeral range (32768+): a killed node's
 * ports stay free until it is revived, and an ephemeral port (an outgoing
 * connection, a CLI's distribution listener) must not take one meanwhile.
 */
const BASE_PORT_MIN = 20_000;
const BASE_PORT_MAX = 32_768 - 103;
const BASE_PORT_ATTEMPTS = 50;

export interface RabbitClusterOptions {
  /** Node i gets AMQP port basePort+i-1 and distribution port basePort+100+i-1; picked free when absent. */
  basePort?: number;
}

export interface ClusterQueue {
  name: string;
  type: string;
  /** The quorum/stream leader; for a classic queue, the node it lives on. */
  leader: string;
  members: string[];
  consumers: number;
  messages: number;
}

export type NodeState = "running" | "killed" | "paused" | "app-stopped";

async function runScript(args: string[], timeoutMs: number): Promise<string> {
  try {
    const { stdout } = await run("bash", [CLUSTER_SCRIPT, ...args], {
      timeout: timeoutMs,
      maxBuffer: 16 * 1024 * 1024,
      // CLUSTER_OWNER_PID: the script's watchdog stops the cluster once this process is gone,
      // however it ends (vitest SIGKILLs a worker that does not exit within 500 ms of SIGTERM).
      env: { ...process.env, CLUSTER_CTL_TIMEOUT_S: String(CTL_TIMEOUT_S), CLUSTER_OWNER_PID: String(process.pid) },
    });
    return stdout;
  } catch (error) {
    const failure = error as Error & { stderr?: string; code?: number | string; signal?: string; killed?: boolean };
    const how = failure.killed ? `killed after ${timeoutMs} ms` : `exit ${failure.code ?? failure.signal ?? "?"}`;
    throw new Error(`rabbitmq-cluster.sh ${args.join(" ")}: ${how}\n${failure.stderr?.trim() || failure.message}`, { cause: error });
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => server.close(() => resolve(true)));
  });
}

export function clusterPorts(basePort: number): number[] {
  const amqp = Array.from({ length: NODE_COUNT }, (_, index) => basePort + index);
  return [...amqp, ...amqp.map((port) => port + 100)];
}

/** A base port whose six ports are all free on 127.0.0.1 right now (the script refuses one that is taken by the time it runs). */
export async function freeBasePort(): Promise<number> {
  for (let attempt = 0; attempt < BASE_PORT_ATTEMPTS; attempt++) {
    const base = BASE_PORT_MIN + Math.floor(Math.random() * (BASE_PORT_MAX - BASE_PORT_MIN));
    const free = await Promise.all(clusterPorts(base).map(portFree));
    if (free.every(Boolean)) return base;
  }
  throw new Error(`no base port with ${NODE_COUNT * 2} free ports found in ${BASE_PORT_ATTEMPTS} attempts`);
}

/**
 * A private three-node RabbitMQ 3.10 cluster (test/support/rabbitmq-cluster.sh)
 * for tests that kill, pause and revive brokers. Node indexes are 1-based. Every
 * method is bounded and throws with the script's stderr; `stop()` is idempotent,
 * and the script's watchdog stops a cluster whose test process died without it.
 */
export class RabbitCluster {
  readonly urls: string[];
  private readonly states = new Map<number, NodeState>();
  private stopped = false;

  private constructor(
    readonly directory: string,
    readonly basePort: number,
    urls: string[],
  ) {
    this.urls = urls;
    for (let node = 1; node <= NODE_COUNT; node++) this.states.set(node, "running");
  }

  static async start(options: RabbitClusterOptions = {}): Promise<RabbitCluster> {
    const basePort = options.basePort ?? (await freeBasePort());
    const directory = await mkdtemp(join(tmpdir(), `rabbit-cluster-${basePort}-`));
    try {
      await runScript(["start", directory, String(basePort)], START_TIMEOUT_MS);
      const urls = (await runScript(["urls", directory], SIGNAL_TIMEOUT_MS)).trim().split(",");
      if (urls.length !== NODE_COUNT) throw new Error(`expected ${NODE_COUNT} URLs, got ${urls.join(",")}`);
      return new RabbitCluster(directory, basePort, urls);
    } catch (error) {
      await runScript(["stop", directory], STOP_TIMEOUT_MS).catch(() => undefined);
      throw error;
    }
  }

  /** Guest URL of node `node`, for `vhost` (default `/`). */
  url(node: number, vhost = "/"): string {
    const base = this.urls[this.index(node) - 1] as string;
    return vhost === "/" ? base : `${base}/${encodeURIComponent(vhost)}`;
  }

  /** All nodes' URLs, comma-joined (the gateway's RABBITMQ_URL list form). */
  urlList(vhost = "/"): string {
    return Array.from({ length: NODE_COUNT }, (_, index) => this.url(index + 1, vhost)).join(",");
  }

  /** The script's naming: the base port makes names unique per cluster. */
  nodeName(node: number): string {
    return `sobr${this.basePort}n${this.index(node)}@localhost`;
  }

  state(node: number): NodeState {
    return this.states.get(this.index(node)) as NodeState;
  }

  /** SIGKILL of the node's Erlang VM; returns once the process and its epmd name are gone. */
  async kill(node: number): Promise<void> {
    await this.script("kill", node, SIGNAL_TIMEOUT_MS);
    this.states.set(node, "killed");
  }

  /** Starts a killed node on its old data; returns once it runs and has rejoined. */
  async revive(node: number): Promise<void> {
    await this.script("revive", node, REVIVE_TIMEOUT_MS);
    this.states.set(node, "running");
  }

  async stopApp(node: number): Promise<void> {
    await this.script("stop_app", node, CTL_CALL_TIMEOUT_MS);
    this.states.set(node, "app-stopped");
  }

  async startApp(node: number): Promise<void> {
    await this.script("start_app", node, CTL_CALL_TIMEOUT_MS);
    this.states.set(node, "running");
  }

  /** SIGSTOP: a hung node. Its listeners still accept TCP, but nothing answers; rabbitmqctl against it times out. */
  async pause(node: number): Promise<void> {
    await this.script("pause", node, SIGNAL_TIMEOUT_MS);
    this.states.set(node, "paused");
  }

  async resume(node: number): Promise<void> {
    await this.script("resume", node, SIGNAL_TIMEOUT_MS);
    this.states.set(node, "running");
  }

  /** rabbitmqctl against node `node`; resolves with its stdout. */
  async ctl(node: number, ...args: string[]): Promise<string> {
    return runScript(["ctl", this.directory, String(this.index(node)), ...args], CTL_CALL_TIMEOUT_MS);
  }

  /** Node `via`'s view: each member and whether it runs RabbitMQ (never asks the other nodes). */
  async members(via = this.answeringNode()): Promise<Map<string, boolean>> {
    const stdout = await runScript(["members", this.directory, String(this.index(via))], CTL_CALL_TIMEOUT_MS);
    const members = new Map<string, boolean>();
    for (const line of stdout.trim().split("\n")) {
      const [name, status] = line.split(" ");
      if (name) members.set(name, status === "running");
    }
    return members;
  }

  async addVhost(name: string, via = this.answeringNode()): Promise<void> {
    await this.ctl(via, "add_vhost", name);
    await this.ctl(via, "set_permissions", "-p", name, "guest", ".*", ".*", ".*");
  }

  /** list_queues of `vhost` as seen by node `via`. Queue names must not contain a newline. */
  async queues(vhost = "/", via = this.answeringNode()): Promise<ClusterQueue[]> {
    // The name goes last so that a tab inside it survives the split; pid carries a classic queue's node.
    const stdout = await this.ctl(via, "list_queues", "-q", "--no-table-headers", "-p", vhost, "type", "leader", "members", "consumers", "messages", "pid", "name");
    return stdout
      .split("\n")
      .filter((line) => line.length > 0)
      .map((line) => {
        const [type = "", leader = "", members = "", consumers = "", messages = "", pid = "", ...name] = line.split("\t");
        const pidNode = /^<([^.>]+@[^.>]+)\./.exec(pid)?.[1] ?? "";
        const memberList = members.replace(/^\[|\]$/g, "").split(",").map((member) => member.trim()).filter(Boolean);
        return {
          name: name.join("\t"),
          type,
          leader: leader || pidNode,
          members: memberList.length > 0 ? memberList : pidNode ? [pidNode] : [],
          consumers: Number(consumers),
          messages: Number(messages),
        };
      });
  }

  /** Waits until node `via` sees exactly `count` members running RabbitMQ; resolves with their names. */
  async waitForRunning(count: number, timeoutMs = 60_000, via?: number): Promise<string[]> {
    let running: string[] = [];
    try {
      await waitFor(
        async () => {
          const members = await this.members(via ?? this.answeringNode());
          running = [...members].filter(([, up]) => up).map(([name]) => name);
          return running.length === count;
        },
        timeoutMs,
        `${count} running nodes`,
      );
    } catch (error) {
      throw new Error(`${count} running nodes not seen within ${timeoutMs} ms (last seen: ${running.join(", ") || "none"})`, { cause: error });
    }
    return running;
  }

  /** Kills every node (SIGCONT first for paused ones) and removes the directory. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    await runScript(["stop", this.directory], STOP_TIMEOUT_MS);
    this.stopped = true;
  }

  /** The first node that will answer rabbitmqctl: running, or with only its application stopped. */
  private answeringNode(): number {
    for (const preferred of ["running", "app-stopped"] as const) {
      for (const [node, state] of this.states) if (state === preferred) return node;
    }
    throw new Error("no node of the cluster can answer: all are killed or paused");
  }

  private async script(command: string, node: number, timeoutMs: number): Promise<void> {
    await runScript([command, this.directory, String(this.index(node))], timeoutMs);
  }

  private index(node: number): number {
    if (!Number.isInteger(node) || node < 1 || node > NODE_COUNT) throw new Error(`node index must be 1..${NODE_COUNT}, got ${node}`);
    return node;
  }
}
