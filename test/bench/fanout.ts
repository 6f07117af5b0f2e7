import os from "node:os";
import { ClientFleet, type FleetTotals } from "./fleet.js";
import { Phase } from "./ipc.js";
import { closedLoop, openLoop, type PhaseContext, type PhaseRun, warmUp } from "./phases.js";
import type { ServerHandle } from "./servers.js";
import { round } from "./stats.js";

export interface FanoutOptions {
  clients: number;
  channels: number;
  procs: number;
  bodyBytes: number;
  addressesPerProc: number;
  connectConcurrency: number;
  connectTimeoutMs: number;
  warmupMs: number;
  routeTimeoutMs: number;
  maxMs: number;
  /** Start of the max phase left out of the rate: the loop fills, JIT settles. */
  rampMs: number;
  fixedMs: number;
  /** Fixed-phase offered load as a fraction of the max rate found in the same scenario. */
  fixedFraction: number;
  /** Common-phase offered deliveries/s, the same for every scenario; 0 skips the phase. */
  commonDeliveriesPerSec: number;
  /** Closed loop: deliveries allowed in flight (published × subscribers − received). */
  windowDeliveries: number;
  reportEveryMs: number;
  hardTimeoutMs: number;
}

export interface Percentiles {
  p50Ms: number | null;
  p99Ms: number | null;
  p999Ms: number | null;
}

export interface PhaseResult extends Percentiles {
  offeredDeliveriesPerSec: number | null;
  deliveredPerSec: number;
  published: number;
  expected: number;
  received: number;
  lost: number;
  publisherMaxLagMs: number;
  cpuPct: Record<string, number | null>;
  serverWritesPerSec: number | null;
}

/** The headline figures asked for (max delivered/s; latency at half of it; all losses), then the detail behind them. */
export interface FanoutResult extends Percentiles {
  deliveredPerSec: number;
  lost: number;
  /** Max-phase deliveries per second of server CPU: less sensitive than delivered/s to a box full of clients. */
  deliveriesPerServerCpuSec: number | null;
  /** Max-phase deliveries per socket-write system call of the server (`null` without perf): how well it coalesces. */
  deliveriesPerServerWrite: number | null;
  clients: { connected: number; failed: number; failures: Record<string, number>; connectMs: number; unrouted: number };
  max: PhaseResult;
  fixed: PhaseResult;
  common: PhaseResult | null;
  outOfOrder: number;
  unexpectedCloses: number;
  closeCodes: Record<string, number>;
  negativeLatencies: number;
  loadAvg1m: number;
  notes: string[];
}

type Log = (line: string) => void;

/**
 * One fan-out scenario against one server, on one set of connections:
 * warm-up (routing check), max throughput (closed loop), latency at
 * `fixedFraction` of that max, latency at `commonDeliveriesPerSec` (the same
 * load point for every server). See phases.ts for how each is measured.
 *
 * `lost`: what each channel's subscribers should have received (events
 * published to it × its subscribers) minus what they did, after waiting for
 * stragglers at the end of each phase.
 */
export async function runFanout(server: ServerHandle, options: FanoutOptions, log: Log): Promise<FanoutResult> {
  const loadAvg1m = round(os.loadavg()[0] ?? 0, 2) ?? 0;
  const fleet = await ClientFleet.start({
    procs: options.procs,
    clients: options.clients,
    channels: options.channels,
    url: server.wsUrl,
    jwtSecret: server.jwtSecret,
    wire: server.wire,
    addressesPerProc: options.addressesPerProc,
    connectConcurrency: options.connectConcurrency,
    connectTimeoutMs: options.connectTimeoutMs,
    hardTimeoutMs: options.hardTimeoutMs,
    reportEveryMs: options.reportEveryMs,
  });
  try {
    log(`  ${fleet.connected}/${options.clients} clients subscribed in ${Math.round(fleet.connectMs)} ms${fleet.failed > 0 ? `; failures ${JSON.stringify(fleet.failures)}` : ""}`);
    if (fleet.connected === 0) throw new Error(`no client could subscribe: ${JSON.stringify(fleet.failures)}`);
    const context: PhaseContext = {
      server,
      fleet,
      channels: options.channels,
      perEvent: fleet.connected / options.channels,
      cpuGroups: { ...server.pids, clients: fleet.pids(), runner: [process.pid] },
    };

    await warmUp(context, options.warmupMs, options.routeTimeoutMs);
    const unrouted = fleet.connected - fleet.routed();
    if (unrouted > 0) log(`  warning: ${unrouted} clients never received a warm-up event`);

    const max = await closedLoop(context, options.maxMs, options.rampMs, options.windowDeliveries);
    log(`  max: ${Math.round(max.deliveredPerSec)} delivered/s (closed loop, window ${options.windowDeliveries})`);
    if (max.deliveredPerSec <= 0) throw new Error("nothing delivered in the max-throughput phase");
    const fixedOffered = max.deliveredPerSec * options.fixedFraction;
    const fixed = await openLoop(context, Phase.Fixed, fixedOffered, options.fixedMs);
    const common = options.commonDeliveriesPerSec > 0 ? await openLoop(context, Phase.Common, options.commonDeliveriesPerSec, options.fixedMs) : null;

    // Another tenant of a shared machine may kill processes by name: say so
    // instead of leaving a mysterious `lost` behind.
    const died = server.exitStatus();
    if (died !== null) log(`  WARNING: the ${server.name} server process ${died} before the run ended (see its log); figures after that are void`);
    const totals = await fleet.finish(10_000);
    const results = {
      max: phaseResult(max, null, totals, Phase.Max),
      fixed: phaseResult(fixed, fixedOffered, totals, Phase.Fixed),
      common: common === null ? null : phaseResult(common, options.commonDeliveriesPerSec, totals, Phase.Common),
    };
    for (const name of ["fixed", "common"] as const) {
      const phase = results[name];
      if (phase) log(`  ${name}: offered ${phase.offeredDeliveriesPerSec} deliveries/s, p50 ${phase.p50Ms} ms, p99 ${phase.p99Ms} ms, p99.9 ${phase.p999Ms} ms, lost ${phase.lost}`);
    }
    const serverCpu = max.cpuPct.server ?? null;
    return {
      deliveredPerSec: results.max.deliveredPerSec,
      p50Ms: results.fixed.p50Ms,
      p99Ms: results.fixed.p99Ms,
      p999Ms: results.fixed.p999Ms,
      lost: results.max.lost + results.fixed.lost + (results.common?.lost ?? 0),
      deliveriesPerServerCpuSec: serverCpu ? Math.round(max.deliveredPerSec / (serverCpu / 100)) : null,
      deliveriesPerServerWrite: max.serverWritesPerSec ? round(max.deliveredPerSec / max.serverWritesPerSec, 1) : null,
      clients: { connected: fleet.connected, failed: fleet.failed, failures: fleet.failures, connectMs: Math.round(fleet.connectMs), unrouted },
      ...results,
      outOfOrder: totals.outOfOrder.slice(Phase.Max).reduce((sum, count) => sum + count, 0),
      unexpectedCloses: totals.closed,
      closeCodes: totals.closeCodes,
      negativeLatencies: totals.negativeLatencies,
      loadAvg1m,
      notes: died === null ? server.notes : [...server.notes, `server process ${died} before the run ended`],
    };
  } finally {
    await fleet.stop();
  }
}

function phaseResult(run: PhaseRun, offered: number | null, totals: FleetTotals, phase: Phase): PhaseResult {
  const histogram = totals.histograms[phase]!;
  const received = totals.received[phase]!;
  return {
    offeredDeliveriesPerSec: offered === null ? null : Math.round(offered),
    deliveredPerSec: Math.round(run.deliveredPerSec),
    p50Ms: round(histogram.percentileMs(0.5)),
    p99Ms: round(histogram.percentileMs(0.99)),
    p999Ms: round(histogram.percentileMs(0.999)),
    published: run.published,
    expected: run.expected,
    received,
    lost: Math.max(0, run.expected - received),
    publisherMaxLagMs: round(run.publisherMaxLagMs, 1) ?? 0,
    cpuPct: run.cpuPct,
    serverWritesPerSec: run.serverWritesPerSec,
  };
}
