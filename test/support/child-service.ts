import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";

/** A free TCP port on loopback (bound, read, released: the caller binds it again soon after). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * A third-party server (nginx, Prometheus) run as a child process of the test,
 * never the system service: output kept for failure messages, stopped with
 * SIGTERM (SIGKILL after `stopTimeoutMs`).
 */
export class ChildService {
  output = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
  ) {
    this.child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    const keep = (chunk: Buffer) => {
      this.output += chunk.toString();
      if (this.output.length > 200_000) this.output = this.output.slice(-100_000);
    };
    this.child.stdout?.on("data", keep);
    this.child.stderr?.on("data", keep);
    this.exited = new Promise((resolve) => this.child.on("exit", (code, signal) => resolve({ code, signal })));
    this.child.on("error", (error) => (this.output += `spawn error: ${error.message}\n`));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop(stopTimeoutMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), stopTimeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Polls `probe` until it succeeds; fails early (with the output) if the process exits. */
  async waitUntil(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) throw new Error(`${this.name} exited before ${what}; output:\n${this.output}`);
      if (await probe().catch(() => false)) return;
      if (Date.now() > deadline) throw new Error(`${this.name}: ${what} not reached within ${timeoutMs} ms; output:\n${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Replaces `search` in `text`, insisting it occurs exactly `times` times (a drifted shipped file fails loudly). */
export function replaceExactly(text: string, search: string | RegExp, replacement: string, times = 1): string {
  const pattern = typeof search === "string" ? new RegExp(search.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "g") : new RegExp(search.source, search.flags.includes("g") ? search.flags : `${search.flags}g`);
  const found = text.match(pattern)?.length ?? 0;
  if (found !== times) throw new Error(`expected ${times} occurrence(s) of ${String(search)} in the shipped file, found ${found}`);
  return text.replace(pattern, replacement);
}
