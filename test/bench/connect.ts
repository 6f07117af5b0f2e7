import os from "node:os";
import { ConnFleet } from "./conn-fleet.js";
import { CpuMeter } from "./machine.js";
import { openFilesLimit } from "./memory.js";
import { printGrid, ratio, show } from "./report.js";
import { type ProcessHandle, type ServerContext, startGatewayProcess, startPlainWs } from "./servers.js";
import { round } from "./stats.js";

export interface ConnectOptions {
  clients: number;
  procs: number;
  addressesPerProc: number;
  /** Connects in flight per client process. */
  concurrency: number;
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
  gateway: ConnectServerResult;
  plainWs: ConnectServerResult;
  loadAvg1m: number;
  notes: string[];
}

/**
 * Scenario `connect`: a storm of authenticated connects. Gateway: each client
 * connects with its own JWT (distinct user), waits for `welcome`, subscribes
 * to `user:<id>` (a new binding per user: binding churn is part of the cost)
 * and waits for `ok`; the time of that whole exchange is the latency. Plain
 * `ws` baseline: connect until `open` (no auth, no frames). Tokens are signed
 * before the clock starts. `procs × concurrency` connects are in flight.
 */
export async function runConnect(context: ServerContext, options: ConnectOptions, log: (line: string) => void): Promise<ConnectResult> {
  const clients = Math.min(options.clients, openFilesLimit() - 500);
  const loadAvg1m = round(os.loadavg()[0] ?? 0, 2) ?? 0;
  log(`  ${clients} clients, ${options.procs} processes × ${options.concurrency} connects in flight`);
  const gateway = await storm(context, options, clients, await startGatewayProcess(context, {}, "connect"), log, "gateway");
  const plainWs = await storm(context, options, clients, await startPlainWs(context), log, "plainWs");
  return { clients, gateway, plainWs, loadAvg1m, notes: clients < options.clients ? [`capped at ${clients} by the open-files limit`] : [] };
}

async function storm(context: ServerContext, options: ConnectOptions, clients: number, server: ProcessHandle, log: (line: string) => void, name: string): Promise<ConnectServerResult> {
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
    const totals = await fleet.step("connect", { type: "connect" });
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
    await server.stop();
  }
}

export function printConnect(result: ConnectResult, log: (line: string) => void): void {
  const row = (name: string, r: ConnectServerResult): string[] => [
    name,
    String(r.connectsPerSec),
    show(r.p50Ms),
    show(r.p99Ms),
    String(r.failed),
    show(r.cpuPct.server ?? null),
    show(r.cpuPct.clients ?? null),
    show(r.cpuPct.box ?? null),
    show(r.cpuPct.others ?? null),
  ];
  printGrid([["connect", "connects/s", "p50 ms", "p99 ms", "failed", "srv cpu%", "clients cpu%", "box cpu%", "others%"], row("gateway", result.gateway), row("plainWs", result.plainWs)], log);
  log(`gateway/plainWs: connects/s ${ratio(result.gateway.connectsPerSec, result.plainWs.connectsPerSec)} (gateway: JWT + welcome + subscribe user:<id> + ok; plainWs: open only)`);
}
