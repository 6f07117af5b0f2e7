import os from "node:os";
import { ConnFleet } from "./conn-fleet.js";
import { heapUsedBytes, openFilesLimit, rssBytes } from "./memory.js";
import { printGrid, ratio, show } from "./report.js";
import { type ProcessHandle, type ServerContext, startGatewayProcess, startPlainWs } from "./servers.js";
import { round } from "./stats.js";

export interface IdleOptions {
  connections: number;
  procs: number;
  addressesPerProc: number;
  settleMs: number;
}

export interface IdleServerResult {
  connected: number;
  failed: number;
  failures: Record<string, number>;
  connectMs: number;
  rssBeforeBytes: number | null;
  rssAfterBytes: number | null;
  heapBeforeBytes: number | null;
  heapAfterBytes: number | null;
  rssBytesPerConnection: number | null;
  heapBytesPerConnection: number | null;
}

export interface IdleResult {
  connections: number;
  gatewayBytesPerConnection: number | null;
  wsBytesPerConnection: number | null;
  gateway: IdleServerResult;
  plainWs: IdleServerResult;
  loadAvg1m: number;
  notes: string[];
}

/**
 * Scenario `idle`: N authenticated connections that only hold (gateway: JWT,
 * `welcome`, no subscription; heartbeat stretched so that no ping is needed
 * during the measurement), against a plain `ws` server holding as many. Bytes
 * per connection = (server RSS with the connections − RSS before) / connected,
 * each read after `settleMs` of quiet; V8 heap the same way.
 */
export async function runIdle(context: ServerContext, options: IdleOptions, log: (line: string) => void): Promise<IdleResult> {
  const notes: string[] = [];
  // Every server-side socket is a file descriptor; the limit cannot be raised here.
  const cap = openFilesLimit() - 500;
  const connections = Math.min(options.connections, cap);
  if (connections < options.connections) notes.push(`capped at ${connections} connections: open-files limit ${openFilesLimit()} per process (RLIMIT_NOFILE hard limit of this container)`);
  log(`  ${connections} idle connections from ${options.procs} processes${notes.length > 0 ? ` (${notes[0]})` : ""}`);
  const loadAvg1m = round(os.loadavg()[0] ?? 0, 2) ?? 0;
  const gateway = await measure(context, options, connections, "gateway", log);
  const plainWs = await measure(context, options, connections, "plain", log);
  return { connections, gatewayBytesPerConnection: gateway.rssBytesPerConnection, wsBytesPerConnection: plainWs.rssBytesPerConnection, gateway, plainWs, loadAvg1m, notes };
}

async function measure(context: ServerContext, options: IdleOptions, connections: number, kind: "gateway" | "plain", log: (line: string) => void): Promise<IdleServerResult> {
  const server: ProcessHandle =
    kind === "gateway" ? await startGatewayProcess(context, { HEARTBEAT_MS: "600000", PRESENCE_TTL_MS: "1200000", MAX_CONNECTIONS: "200000" }, "idle") : await startPlainWs(context);
  const fleet = ConnFleet.start({
    procs: options.procs,
    clients: connections,
    url: server.wsUrl,
    jwtSecret: server.jwtSecret,
    addressesPerProc: options.addressesPerProc,
    concurrency: 100,
    timeoutMs: 30_000,
    hardTimeoutMs: context.hardTimeoutMs,
  });
  try {
    await sleep(options.settleMs);
    const rssBeforeBytes = rssBytes(server.pid);
    const heapBeforeBytes = await heapUsedBytes(server.port, kind);
    const opened = await fleet.open("none");
    await sleep(options.settleMs);
    const rssAfterBytes = rssBytes(server.pid);
    const heapAfterBytes = await heapUsedBytes(server.port, kind);
    const per = (before: number | null, after: number | null): number | null => (before === null || after === null || opened.ok === 0 ? null : Math.round((after - before) / opened.ok));
    const result: IdleServerResult = {
      connected: opened.ok,
      failed: opened.failed,
      failures: opened.failures,
      connectMs: Math.round(opened.elapsedMs),
      rssBeforeBytes,
      rssAfterBytes,
      heapBeforeBytes,
      heapAfterBytes,
      rssBytesPerConnection: per(rssBeforeBytes, rssAfterBytes),
      heapBytesPerConnection: per(heapBeforeBytes, heapAfterBytes),
    };
    log(`  ${kind}: ${opened.ok} connected in ${result.connectMs} ms${opened.failed > 0 ? `, failures ${JSON.stringify(opened.failures)}` : ""}; RSS ${result.rssBytesPerConnection} B/conn, heap ${result.heapBytesPerConnection} B/conn`);
    return result;
  } finally {
    await fleet.stop();
    await server.stop();
  }
}

export function printIdle(result: IdleResult, log: (line: string) => void): void {
  const row = (name: string, r: IdleServerResult): string[] => [name, String(r.connected), show(r.rssBytesPerConnection), show(r.heapBytesPerConnection), show(mb(r.rssAfterBytes)), String(r.failed)];
  printGrid([["idle", "connections", "rss B/conn", "heap B/conn", "rss MB", "failed"], row("gateway", result.gateway), row("plainWs", result.plainWs)], log);
  log(`gateway/plainWs: rss per connection ${ratio(result.gateway.rssBytesPerConnection, result.plainWs.rssBytesPerConnection)}, heap per connection ${ratio(result.gateway.heapBytesPerConnection, result.plainWs.heapBytesPerConnection)}`);
}

function mb(bytes: number | null): number | null {
  return bytes === null ? null : Math.round(bytes / 2 ** 20);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
