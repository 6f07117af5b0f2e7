import os from "node:os";
import { randomBytes } from "node:crypto";
import { ConnFleet } from "./conn-fleet.js";
import type { ConnectStep } from "./conn-process.js";
import { CpuMeter } from "./machine.js";
import { openFilesLimit } from "./memory.js";
import { printGrid, ratio, show } from "./report.js";
import { type ServerContext, startGatewayProcess, startPlainWs, startRawUws } from "./servers.js";
import { round } from "./stats.js";

/**
 * The phases of scenario `connect`, run in this order, each against a fresh
 * server process, so one run decomposes the storm:
 *
 * | phase | server | each client does |
 * |---|---|---|
 * | `plainWs` | plain `ws` server | upgrade (`open`) only |
 * | `rawUws` | bare uWS.js | upgrade, `welcome`, subscribe `user:<id>`, `ok` (no auth, no broker) |
 * | `welcome` | gateway | JWT upgrade, `welcome` |
 * | `bound` | gateway | + subscribe `room:bench0` (one channel for all: bound once) |
 * | `user` | gateway | + subscribe `user:<id>` (a new channel, so a new binding, per client) |
 * | `userWhole` | gateway, `BIND_WHOLE_NAMESPACES=user` | the same as `user`; one `user.#` binding made at start |
 */
export const CONNECT_PHASES = ["plainWs", "rawUws", "welcome", "bound", "user", "userWhole"] as const;
export type ConnectPhase = (typeof CONNECT_PHASES)[number];

export interface ConnectOptions {
  clients: number;
  procs: number;
  addressesPerProc: number;
  /** Connects in flight per client process. */
  concurrency: number;
  phases: ConnectPhase[];
  client: ConnectStep["client"];
}

export interface ConnectServerResult {
  connectsPerSec: number;
  p50Ms: number | null;
  p99Ms: number | null;
  connected: number;
  failed: number;
  failures: Record<string, number>;
  elapsedMs: number;
  cpuPct: Record<string, number | null>;
}

export interface ConnectResult {
  clients: number;
  client: ConnectStep["client"];
  phases: Partial<Record<ConnectPhase, ConnectServerResult>>;
  loadAvg1m: number;
  notes: string[];
}

const PHASE_STEP: Record<ConnectPhase, Omit<ConnectStep, "client">> = {
  plainWs: { wire: "native", expect: "open", subscribe: "none" },
  rawUws: { wire: "native", expect: "welcome", subscribe: "user" },
  welcome: { wire: "native", expect: "welcome", subscribe: "none" },
  bound: { wire: "native", expect: "welcome", subscribe: "room" },
  user: { wire: "native", expect: "welcome", subscribe: "user" },
  userWhole: { wire: "native", expect: "welcome", subscribe: "user" },
};

interface StormTarget {
  wsUrl: string;
  /** `null`: the clients send no token (the Pusher endpoint). */
  jwtSecret: string | null;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Scenario `connect`: storms of connects, `procs × concurrency` in flight,
 * one per phase (CONNECT_PHASES). Every client has its own user and JWT,
 * signed before the clock starts and sent to every server (the baselines
 * ignore it), so all phases send the same bytes.
 */
export async function runConnect(context: ServerContext, options: ConnectOptions, log: (line: string) => void): Promise<ConnectResult> {
  const clients = Math.min(options.clients, openFilesLimit() - 500);
  const loadAvg1m = round(os.loadavg()[0] ?? 0, 2) ?? 0;
  log(`  ${clients} clients, ${options.procs} processes × ${options.concurrency} connects in flight, ${options.client} client`);
  const phases: ConnectResult["phases"] = {};
  for (const phase of options.phases) {
    const target = await startTarget(context, phase);
    try {
      phases[phase] = await storm(context, options, clients, target, { client: options.client, ...PHASE_STEP[phase] }, log, phase);
    } finally {
      await target.stop();
    }
  }
  return { clients, client: options.client, phases, loadAvg1m, notes: clients < options.clients ? [`capped at ${clients} by the open-files limit`] : [] };
}

async function startTarget(context: ServerContext, phase: ConnectPhase): Promise<StormTarget> {
  const unusedSecret = randomBytes(24).toString("hex");
  switch (phase) {
    case "plainWs": {
      const server = await startPlainWs(context);
      return { wsUrl: server.wsUrl, jwtSecret: unusedSecret, pid: server.pid, stop: () => server.stop() };
    }
    case "rawUws": {
      const server = await startRawUws(context);
      return { wsUrl: server.wsUrl, jwtSecret: unusedSecret, pid: server.pids.server?.[0] ?? 0, stop: () => server.stop() };
    }
    case "welcome":
    case "bound":
    case "user":
    case "userWhole": {
      const env: Record<string, string> = phase === "userWhole" ? { BIND_WHOLE_NAMESPACES: "user" } : {};
      const server = await startGatewayProcess(context, env, `connect-${phase}`);
      return { wsUrl: server.wsUrl, jwtSecret: server.jwtSecret!, pid: server.pid, stop: () => server.stop() };
    }
    default: {
      const unreachable: never = phase;
      return unreachable;
    }
  }
}

/** One storm of `clients` connects against a running server (left running), with its connect rate, latency and the CPU of each process group. */
export async function storm(
  context: ServerContext,
  options: Omit<ConnectOptions, "phases">,
  clients: number,
  server: Omit<StormTarget, "stop">,
  step: ConnectStep,
  log: (line: string) => void,
  name: string,
): Promise<ConnectServerResult> {
  const fleet = ConnFleet.start({
    procs: options.procs,
    clients,
    url: server.wsUrl,
    jwtSecret: server.jwtSecret,
    addressesPerProc: options.addressesPerProc,
    concurrency: options.concurrency,
    timeoutMs: 30_000,
    hardTimeoutMs: context.hardTimeoutMs,
  });
  try {
    await fleet.configure();
    const pids: Record<string, number[]> = { server: [server.pid], clients: fleet.pids(), runner: [process.pid] };
    if (context.brokerPid !== null) pids.broker = [context.brokerPid];
    const meter = new CpuMeter(pids);
    const totals = await fleet.step("connect", { type: "connect", ...step });
    const cpuPct = meter.stop();
    const result: ConnectServerResult = {
      connectsPerSec: Math.round((totals.ok / totals.elapsedMs) * 1000),
      p50Ms: round(totals.histogram.percentileMs(0.5)),
      p99Ms: round(totals.histogram.percentileMs(0.99)),
      connected: totals.ok,
      failed: totals.failed,
      failures: totals.failures,
      elapsedMs: Math.round(totals.elapsedMs),
      cpuPct,
    };
    log(`  ${name}: ${result.connectsPerSec} connects/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms${totals.failed > 0 ? `, failures ${JSON.stringify(totals.failures)}` : ""}`);
    return result;
  } finally {
    await fleet.stop();
  }
}

export function printConnect(result: ConnectResult, log: (line: string) => void): void {
  const baseline = result.phases.rawUws?.connectsPerSec;
  const rows = CONNECT_PHASES.flatMap((phase) => {
    const r = result.phases[phase];
    if (r === undefined) return [];
    return [
      [
        phase,
        String(r.connectsPerSec),
        baseline === undefined ? "-" : ratio(r.connectsPerSec, baseline),
        show(r.p50Ms),
        show(r.p99Ms),
        String(r.failed),
        show(r.cpuPct.server ?? null),
        show(r.cpuPct.broker ?? null),
        show(r.cpuPct.clients ?? null),
        show(r.cpuPct.box ?? null),
        show(r.cpuPct.others ?? null),
      ],
    ];
  });
  printGrid([["connect", "connects/s", "/rawUws", "p50 ms", "p99 ms", "failed", "srv cpu%", "broker cpu%", "clients cpu%", "box cpu%", "others%"], ...rows], log);
  log(`(${result.client} client) plainWs: upgrade only; rawUws: bare uWS.js, welcome + subscribe + ok; welcome: gateway JWT + welcome; bound: + subscribe to one bound channel; user: + subscribe user:<id> (new binding each); userWhole: the same with BIND_WHOLE_NAMESPACES=user`);
}
