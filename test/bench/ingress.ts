import os from "node:os";
import { forkBench, nextMessage, stopChild } from "./children.js";
import { ConnFleet, type StepTotals } from "./conn-fleet.js";
import type { ConnReport } from "./conn-process.js";
import { createIsolated } from "./isolated.js";
import { CpuMeter } from "./machine.js";
import { printGrid, ratio, show } from "./report.js";
import { type ServerContext, startGatewayProcess } from "./servers.js";
import { LatencyHistogram, round } from "./stats.js";

export interface IngressOptions {
  connections: number;
  procs: number;
  /** `publish` ops in flight per connection (closed loop); the baseline gets connections × window. */
  window: number;
  dataBytes: number;
  durationMs: number;
  rampMs: number;
}

export interface IngressSideResult {
  publishesPerSec: number;
  p50Ms: number | null;
  p99Ms: number | null;
  failed: number;
  failures: Record<string, number>;
  cpuPct: Record<string, number | null>;
}

export interface IngressResult {
  connections: number;
  inFlight: number;
  dataBytes: number;
  gateway: IngressSideResult;
  rawAmqp: IngressSideResult;
  loadAvg1m: number;
  notes: string[];
}

/**
 * Scenario `ingress`: clients `publish` to `room:bench<i>` (JWT claim
 * `channels: ["room:*"]`) through frame validation, rate limits (raised far
 * above the offered load) and the gateway's confirmed publish to
 * `sobranie.events`; each op's time is publish → `ok`. Baseline: raw amqplib
 * confirmed publishing from one process, the same bytes per body and the same
 * number in flight. Both in a private vhost (client publishes route nowhere
 * there: the broker confirms them all the same).
 */
export async function runIngress(context: ServerContext, options: IngressOptions, log: (line: string) => void): Promise<IngressResult> {
  const loadAvg1m = round(os.loadavg()[0] ?? 0, 2) ?? 0;
  const isolated = createIsolated(`bench_ingress_${context.runId}`, false);
  const inFlight = options.connections * options.window;
  const pids = (extra: Record<string, number[]>): Record<string, number[]> => ({ ...extra, runner: [process.pid], ...(context.brokerPid === null ? {} : { broker: [context.brokerPid] }) });
  try {
    const limits = { RATE_CONNECTION_PER_SEC: "1000000", RATE_CONNECTION_BURST: "1000000", RATE_USER_PER_SEC: "1000000", RATE_USER_BURST: "1000000", RABBITMQ_URL: isolated.rabbitUrl };
    const server = await startGatewayProcess(context, limits, "ingress");
    const fleet = ConnFleet.start({
      procs: options.procs,
      clients: options.connections,
      url: server.wsUrl,
      jwtSecret: server.jwtSecret,
      addressesPerProc: 1,
      concurrency: 20,
      timeoutMs: 15_000,
      hardTimeoutMs: context.hardTimeoutMs,
      rooms: 20,
    });
    let gateway: IngressSideResult;
    try {
      await fleet.open("none");
      const meter = new CpuMeter(pids({ server: [server.pid], clients: fleet.pids() }));
      const totals = await fleet.step("ingress", { type: "ingress", durationMs: options.durationMs, rampMs: options.rampMs, window: options.window, dataBytes: options.dataBytes });
      gateway = side(totals, meter.stop());
    } finally {
      await fleet.stop();
      await server.stop();
    }
    log(`  gateway: ${gateway.publishesPerSec} publishes/s, p50 ${gateway.p50Ms} ms, p99 ${gateway.p99Ms} ms${gateway.failed > 0 ? `, failures ${JSON.stringify(gateway.failures)}` : ""}`);

    const setup = { rabbitUrl: isolated.rabbitUrl, window: inFlight, durationMs: options.durationMs, rampMs: options.rampMs, dataBytes: options.dataBytes, hardTimeoutMs: context.hardTimeoutMs };
    const child = forkBench("./ingress-amqp.js", [JSON.stringify(setup)]);
    const meter = new CpuMeter(pids({ publisher: [child.pid ?? 0] }));
    let rawAmqp: IngressSideResult;
    try {
      const report = await nextMessage(child, "ingress-amqp", options.durationMs + 30_000, (m) => ((m as ConnReport).type === "done" ? (m as ConnReport) : undefined));
      const histogram = new LatencyHistogram();
      histogram.addSparse(report.histogram);
      rawAmqp = side({ ...report, histogram }, meter.stop());
    } finally {
      await stopChild(child, 5000);
    }
    log(`  rawAmqp: ${rawAmqp.publishesPerSec} publishes/s, p50 ${rawAmqp.p50Ms} ms, p99 ${rawAmqp.p99Ms} ms`);
    return { connections: options.connections, inFlight, dataBytes: options.dataBytes, gateway, rawAmqp, loadAvg1m, notes: [`private vhost ${isolated.rabbitUrl.split("/").pop()}`] };
  } finally {
    isolated.drop();
  }
}

function side(totals: Pick<StepTotals, "ok" | "failed" | "failures" | "elapsedMs" | "histogram">, cpuPct: Record<string, number | null>): IngressSideResult {
  return {
    publishesPerSec: Math.round((totals.ok / totals.elapsedMs) * 1000),
    p50Ms: round(totals.histogram.percentileMs(0.5)),
    p99Ms: round(totals.histogram.percentileMs(0.99)),
    failed: totals.failed,
    failures: totals.failures,
    cpuPct,
  };
}

export function printIngress(result: IngressResult, log: (line: string) => void): void {
  const row = (name: string, r: IngressSideResult, process: string): string[] => [
    name,
    String(r.publishesPerSec),
    show(r.p50Ms),
    show(r.p99Ms),
    String(r.failed),
    show(r.cpuPct[process] ?? null),
    show(r.cpuPct.broker ?? null),
    show(r.cpuPct.box ?? null),
    show(r.cpuPct.others ?? null),
  ];
  printGrid([["ingress", "publishes/s", "p50 ms", "p99 ms", "failed", "proc cpu%", "broker cpu%", "box cpu%", "others%"], row("gateway", result.gateway, "server"), row("rawAmqp", result.rawAmqp, "publisher")], log);
  log(`gateway/rawAmqp: publishes/s ${ratio(result.gateway.publishesPerSec, result.rawAmqp.publishesPerSec)}, p50 ${ratio(result.gateway.p50Ms, result.rawAmqp.p50Ms)}, p99 ${ratio(result.gateway.p99Ms, result.rawAmqp.p99Ms)} (${result.inFlight} in flight, ${result.dataBytes}-byte data)`);
}
