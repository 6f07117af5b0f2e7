import { type ChildProcess, spawn } from "node:child_process";

/** The system calls a server can send socket data with: uWS uses send(), Node's streams write()/writev(). */
const EVENTS = ["sendto", "sendmsg", "write", "writev"].map((name) => `syscalls:sys_enter_${name}`);

/**
 * Counts the socket-write system calls of some processes over a window, with
 * `perf stat` on the kernel's syscall tracepoints (cheap: counted in the
 * kernel, nothing copied out per call). Fan-out on loopback costs mostly
 * kernel time per write, so deliveries per write is what explains a
 * throughput gap between servers that write the same bytes.
 *
 * `stop()` gives calls per second, or `null` where perf is missing or not
 * permitted (perf_event_paranoid, containers): the benchmark runs without it.
 * `write` also counts a server's log lines; at `LOG_LEVEL=warn` there are
 * none in a run.
 */
export class WriteCallMeter {
  private readonly perf: ChildProcess | null;
  private readonly startedAt = performance.now();
  private stderr = "";
  private readonly exited: Promise<void>;

  constructor(pids: number[]) {
    const targets = pids.filter((pid) => pid > 0);
    let perf: ChildProcess | null = null;
    if (targets.length > 0) {
      try {
        perf = spawn("perf", ["stat", "-x", ",", "-e", EVENTS.join(","), "-p", targets.join(",")], { stdio: ["ignore", "ignore", "pipe"] });
      } catch {
        perf = null;
      }
    }
    this.perf = perf;
    this.exited = new Promise((resolve) => {
      if (!perf) return resolve();
      perf.stderr?.on("data", (chunk: Buffer) => {
        this.stderr += chunk.toString("utf8");
      });
      perf.on("error", () => resolve());
      perf.on("close", () => resolve());
    });
  }

  async stop(): Promise<number | null> {
    const seconds = (performance.now() - this.startedAt) / 1000;
    if (!this.perf || this.perf.exitCode !== null) return null;
    this.perf.kill("SIGINT");
    await Promise.race([this.exited, new Promise((resolve) => setTimeout(resolve, 3000))]);
    const total = sumCounts(this.stderr);
    return total === null ? null : Math.round(total / seconds);
  }
}

/** perf's CSV lines are `count,unit,event,…`; any event not counted voids the sum. */
function sumCounts(csv: string): number | null {
  let sum = 0;
  let seen = 0;
  for (const line of csv.split("\n")) {
    const [count, , event] = line.split(",");
    if (!event || !EVENTS.includes(event)) continue;
    const value = Number(count);
    if (!Number.isFinite(value)) return null;
    sum += value;
    seen += 1;
  }
  return seen === EVENTS.length ? sum : null;
}
