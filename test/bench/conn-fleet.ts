import type { ChildProcess } from "node:child_process";
import { awaitExits, forkBench, nextMessage } from "./children.js";
import type { ConnCommand, ConnConfig, ConnReport } from "./conn-process.js";
import { sourceAddresses } from "./source-addresses.js";
import { LatencyHistogram } from "./stats.js";

export interface ConnFleetOptions {
  procs: number;
  /** Total connections, split evenly over the processes. */
  clients: number;
  url: string;
  jwtSecret: string | null;
  addressesPerProc: number;
  concurrency: number;
  timeoutMs: number;
  hardTimeoutMs: number;
  rooms?: number;
  roomPrefix?: string;
  /** Tokens carry a small `info` claim (presence). */
  info?: boolean;
  /**
   * Index of this fleet's first process when several fleets run at once (presence):
   * keeps user ids (`b<proc>x<i>`) distinct across them.
   */
  procOffset?: number;
}

/** One step's reports from every process, added up. */
export interface StepTotals {
  ok: number;
  failed: number;
  failures: Record<string, number>;
  /** The slowest process's elapsed time. */
  elapsedMs: number;
  histogram: LatencyHistogram;
  extra: Record<string, number>;
  /** Per mark name: the earliest and the latest over the processes that reported it. */
  firstMark: Record<string, number>;
  lastMark: Record<string, number>;
}

/**
 * The conn-process children of one scenario run, driven step by step.
 * Each process connects from source addresses of its own (source-addresses.ts);
 * a step resolves once every process has reported it.
 */
export class ConnFleet {
  private constructor(private readonly children: ChildProcess[], private readonly hardTimeoutMs: number) {}

  static start(options: ConnFleetOptions): ConnFleet {
    const children = Array.from({ length: options.procs }, () => forkBench("./conn-process.js"));
    const fleet = new ConnFleet(children, options.hardTimeoutMs);
    const offset = options.procOffset ?? 0;
    const addresses = sourceAddresses(options.procs, options.addressesPerProc);
    children.forEach((child, index) => {
      const proc = offset + index;
      const config: ConnConfig = {
        procIndex: proc,
        url: options.url,
        jwtSecret: options.jwtSecret,
        count: Math.floor(((index + 1) * options.clients) / options.procs) - Math.floor((index * options.clients) / options.procs),
        localAddresses: addresses[index]!,
        concurrency: options.concurrency,
        timeoutMs: options.timeoutMs,
        hardTimeoutMs: options.hardTimeoutMs,
        rooms: options.rooms ?? 1,
        roomPrefix: options.roomPrefix ?? "bench",
        info: options.info ?? false,
      };
      fleet.configs.set(child, config);
    });
    return fleet;
  }

  private readonly configs = new Map<ChildProcess, ConnConfig>();

  /** Hands each process its config; resolves once every token is signed. */
  configure(): Promise<StepTotals> {
    return this.step("config", (child) => ({ type: "config", config: this.configs.get(child)! }));
  }

  /** Opens every process's connections (subscribed to its room when asked). */
  async open(subscribe: "none" | "room"): Promise<StepTotals> {
    await this.configure();
    return this.step("open", { type: "open", subscribe });
  }

  /** Sends `command` to every process (at the same moment; `null`: none, only wait) and adds up their `step` reports. */
  async step(step: string, command: ConnCommand | ((child: ChildProcess) => ConnCommand) | null): Promise<StepTotals> {
    const reports = await Promise.all(
      this.children.map((child, index) => {
        const done = nextMessage(child, `conn process ${index} ${step}`, this.hardTimeoutMs, (m) => {
          const report = m as ConnReport;
          if (report.type === "done" && report.step === "error") throw new Error(`conn process ${index}: ${Object.keys(report.failures).join(", ")}`);
          return report.type === "done" && report.step === step ? report : undefined;
        });
        if (command !== null) child.send(typeof command === "function" ? command(child) : command);
        return done;
      }),
    );
    const totals: StepTotals = { ok: 0, failed: 0, failures: {}, elapsedMs: 0, histogram: new LatencyHistogram(), extra: {}, firstMark: {}, lastMark: {} };
    for (const report of reports) {
      totals.ok += report.ok;
      totals.failed += report.failed;
      totals.elapsedMs = Math.max(totals.elapsedMs, report.elapsedMs);
      totals.histogram.addSparse(report.histogram);
      for (const [reason, count] of Object.entries(report.failures)) totals.failures[reason] = (totals.failures[reason] ?? 0) + count;
      for (const [key, count] of Object.entries(report.extra)) totals.extra[key] = (totals.extra[key] ?? 0) + count;
      for (const [key, at] of Object.entries(report.marks ?? {})) {
        totals.firstMark[key] = Math.min(totals.firstMark[key] ?? at, at);
        totals.lastMark[key] = Math.max(totals.lastMark[key] ?? at, at);
      }
    }
    return totals;
  }

  pids(): number[] {
    return this.children.map((child) => child.pid ?? 0).filter((pid) => pid > 0);
  }

  /** Lets every process close its sockets and exit; kills stragglers. */
  async stop(): Promise<void> {
    for (const child of this.children) if (child.connected) child.send({ type: "finish" } satisfies ConnCommand);
    await awaitExits(this.children);
  }
}
