import type { ChildProcess } from "node:child_process";
import { awaitExits, forkBench, nextMessage, stopChild } from "./children.js";
import { type ClientConfig, type ClientReport, PHASE_COUNT, type Wire } from "./ipc.js";
import { sourceAddresses } from "./source-addresses.js";
import { LatencyHistogram } from "./stats.js";

export interface FleetOptions {
  procs: number;
  clients: number;
  channels: number;
  url: string;
  jwtSecret: string | null;
  wire: Wire;
  addressesPerProc: number;
  connectConcurrency: number;
  connectTimeoutMs: number;
  hardTimeoutMs: number;
  reportEveryMs: number;
}

export interface FleetTotals {
  received: number[];
  outOfOrder: number[];
  closed: number;
  closeCodes: Record<string, number>;
  histograms: LatencyHistogram[];
  negativeLatencies: number;
}

type Ready = Extract<ClientReport, { type: "ready" }>;
type Progress = Extract<ClientReport, { type: "progress" }>;
type Final = Extract<ClientReport, { type: "final" }>;

/**
 * The load-generator processes of one scenario, seen as one.
 *
 * Client `g` of `N` subscribes to channel `g % channels` and lives in process
 * `floor(g * procs / N)`: every channel's subscribers are spread over all
 * processes, so no channel's latency depends on a single process's luck.
 * Each process connects from `addressesPerProc` source addresses of its own
 * (source-addresses.ts): each has its own ~28k ephemeral ports, and no
 * TIME_WAIT left by an earlier scenario is on them.
 */
export class ClientFleet {
  private readonly children: ChildProcess[];
  private readonly latest: Progress[];
  private readonly listeners = new Set<() => void>();
  readonly connected: number;
  readonly failed: number;
  readonly failures: Record<string, number>;
  readonly subscribers: number[];
  readonly connectMs: number;

  private constructor(children: ChildProcess[], ready: Ready[], channels: number) {
    this.children = children;
    this.latest = children.map(() => ({ type: "progress", received: new Array<number>(PHASE_COUNT).fill(0), routed: 0, closed: 0 }));
    this.connected = ready.reduce((sum, report) => sum + report.connected, 0);
    this.failed = ready.reduce((sum, report) => sum + report.failed, 0);
    this.failures = {};
    for (const report of ready) {
      for (const [reason, count] of Object.entries(report.failures)) this.failures[reason] = (this.failures[reason] ?? 0) + count;
    }
    this.subscribers = Array.from({ length: channels }, (_, index) => ready.reduce((sum, report) => sum + (report.subscribers[index] ?? 0), 0));
    this.connectMs = Math.max(...ready.map((report) => report.connectMs));
    children.forEach((child, index) => {
      child.on("message", (message: ClientReport) => {
        if (message.type !== "progress") return;
        this.latest[index] = message;
        for (const listener of this.listeners) listener();
      });
    });
  }

  static async start(options: FleetOptions): Promise<ClientFleet> {
    const children: ChildProcess[] = [];
    try {
      const readies = [];
      const addresses = sourceAddresses(options.procs, options.addressesPerProc);
      for (let proc = 0; proc < options.procs; proc += 1) {
        const first = Math.floor((proc * options.clients) / options.procs);
        const end = Math.floor(((proc + 1) * options.clients) / options.procs);
        const config: ClientConfig = {
          procIndex: proc,
          url: options.url,
          jwtSecret: options.jwtSecret,
          wire: options.wire,
          channelOfClient: Array.from({ length: end - first }, (_, i) => (first + i) % options.channels),
          channelCount: options.channels,
          localAddresses: addresses[proc]!,
          connectConcurrency: options.connectConcurrency,
          connectTimeoutMs: options.connectTimeoutMs,
          hardTimeoutMs: options.hardTimeoutMs,
          reportEveryMs: options.reportEveryMs,
        };
        const child = forkBench("./client-process.js");
        children.push(child);
        readies.push(nextMessage(child, `client process ${proc}`, options.hardTimeoutMs, (m) => ((m as ClientReport).type === "ready" ? (m as Ready) : undefined)));
        child.send({ type: "start", config });
      }
      return new ClientFleet(children, await Promise.all(readies), options.channels);
    } catch (error) {
      await Promise.all(children.map((child) => stopChild(child, 1000)));
      throw error;
    }
  }

  received(phase: number): number {
    return this.latest.reduce((sum, progress) => sum + (progress.received[phase] ?? 0), 0);
  }

  /** Connections that received at least one warm-up event: proof that routing works end to end. */
  routed(): number {
    return this.latest.reduce((sum, progress) => sum + progress.routed, 0);
  }

  closed(): number {
    return this.latest.reduce((sum, progress) => sum + progress.closed, 0);
  }

  /** Called on every progress report (every `reportEveryMs` per process); returns the unsubscribe. */
  onProgress(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Collects every process's final counts and histograms, then lets them close their sockets and exit. */
  async finish(timeoutMs: number): Promise<FleetTotals> {
    const finals = await Promise.all(
      this.children.map((child, index) => {
        const final = nextMessage(child, `client process ${index} final`, timeoutMs, (m) => ((m as ClientReport).type === "final" ? (m as Final) : undefined));
        child.send({ type: "finish" });
        return final;
      }),
    );
    const totals: FleetTotals = {
      received: new Array<number>(PHASE_COUNT).fill(0),
      outOfOrder: new Array<number>(PHASE_COUNT).fill(0),
      closed: 0,
      closeCodes: {},
      histograms: Array.from({ length: PHASE_COUNT }, () => new LatencyHistogram()),
      negativeLatencies: 0,
    };
    for (const final of finals) {
      final.received.forEach((count, phase) => (totals.received[phase]! += count));
      final.outOfOrder.forEach((count, phase) => (totals.outOfOrder[phase]! += count));
      final.histograms.forEach((sparse, phase) => totals.histograms[phase]!.addSparse(sparse));
      totals.closed += final.closed;
      totals.negativeLatencies += final.negativeLatencies;
      for (const [code, count] of Object.entries(final.closeCodes)) totals.closeCodes[code] = (totals.closeCodes[code] ?? 0) + count;
    }
    return totals;
  }

  pids(): number[] {
    return this.children.map((child) => child.pid ?? 0).filter((pid) => pid > 0);
  }

  /** Waits for the processes to exit by themselves after `finish`, then kills any straggler. */
  async stop(): Promise<void> {
    await awaitExits(this.children);
  }
}
