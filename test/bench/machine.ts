import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  node: string;
  platform: string;
  kernel: string;
  totalMemMb: number;
  loadAvg1m: number;
  uwsBuild: string;
}

export function machineInfo(uwsBuild: string): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? "unknown",
    node: process.version,
    platform: `${process.platform}/${process.arch}`,
    kernel: os.release(),
    totalMemMb: Math.round(os.totalmem() / 2 ** 20),
    loadAvg1m: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
    uwsBuild,
  };
}

/** Kernel clock ticks per second for /proc times (USER_HZ; 100 on every mainstream Linux). */
const TICKS_PER_SEC = 100;

/**
 * CPU used by named processes and by the whole box over a window, from
 * /proc (Linux only; `null` elsewhere or for a process that is not visible).
 * Percent of one core: 150 means one and a half cores busy. On a shared,
 * 2-core machine this is what tells "the server is the bottleneck" apart from
 * "the box is full": a throughput figure with box CPU near 100 % is a figure
 * for the machine, not for the server alone.
 */
export class CpuMeter {
  private readonly startedAt = performance.now();
  private readonly start: Map<string, number | null>;
  private readonly boxStart: BoxTicks | null;

  /** `decimals`: digits kept after the point (0 by default; presence reads idle processes at 0.1 %). */
  constructor(
    private readonly groups: Record<string, number[]>,
    private readonly decimals = 0,
  ) {
    this.start = new Map(Object.entries(groups).map(([name, pids]) => [name, ticksOf(pids)]));
    this.boxStart = boxTicks();
  }

  stop(): Record<string, number | null> {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const out: Record<string, number | null> = {};
    for (const [name, pids] of Object.entries(this.groups)) {
      const before = this.start.get(name) ?? null;
      const after = ticksOf(pids);
      out[name] = before === null || after === null ? null : this.round(((after - before) / TICKS_PER_SEC / seconds) * 100);
    }
    const boxEnd = boxTicks();
    const share = (pick: (ticks: BoxTicks) => number): number | null =>
      this.boxStart === null || boxEnd === null || boxEnd.total === this.boxStart.total
        ? null
        : this.round(((pick(boxEnd) - pick(this.boxStart)) / (boxEnd.total - this.boxStart.total)) * 100 * os.cpus().length);
    out.box = share((ticks) => ticks.busy);
    // Kernel network work on loopback (softirq) is mostly not billed to any process.
    out.softirq = share((ticks) => ticks.softirq);
    // What is left: other tenants of a shared machine, and steal.
    const ours = Object.keys(this.groups).reduce((sum, name) => sum + (out[name] ?? 0), 0);
    out.others = out.box === null ? null : Math.max(0, this.round(out.box - ours - (out.softirq ?? 0)));
    return out;
  }

  private round(value: number): number {
    const scale = 10 ** this.decimals;
    return Math.round(value * scale) / scale;
  }
}

function ticksOf(pids: number[]): number | null {
  let sum = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
      sum += Number(fields[11]) + Number(fields[12]);
    } catch {
      return null;
    }
  }
  return sum;
}

interface BoxTicks {
  busy: number;
  softirq: number;
  total: number;
}

/** First line of /proc/stat: user nice system idle iowait irq softirq steal (in ticks, all CPUs). */
function boxTicks(): BoxTicks | null {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const values = line.trim().split(/\s+/).slice(1).map(Number);
    const total = values.slice(0, 8).reduce((sum, value) => sum + value, 0);
    const idle = (values[3] ?? 0) + (values[4] ?? 0);
    return { busy: total - idle, softirq: values[6] ?? 0, total };
  } catch {
    return null;
  }
}

/** RabbitMQ's Erlang VM when it runs on this machine and is visible here; `null` otherwise. */
export function brokerPid(): number | null {
  try {
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() === "beam.smp") return Number(entry);
      } catch {
        // the process ended while we looked
      }
    }
  } catch {
    // not Linux
  }
  return null;
}
