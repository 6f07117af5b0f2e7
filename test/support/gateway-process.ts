import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The compiled entry point (`npm test` builds before running the tests); the benchmarks run this very file from dist/. */
export const MAIN_JS = fileURLToPath(new URL(import.meta.url.includes("/dist/test/") ? "../../src/main.js" : "../../dist/src/main.js", import.meta.url));

/**
 * The runtime gateway processes run on: this process's own (node under
 * vitest, bun under `bun test`), or Bun from node_modules with
 * `GATEWAY_RUNTIME=bun`, to re-run the Node suites against a gateway on Bun.
 */
export const GATEWAY_RUNTIME =
  process.env.GATEWAY_RUNTIME === "bun" ? fileURLToPath(new URL("../../node_modules/.bin/bun", import.meta.url)) : process.execPath;

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A gateway as a whole process, the way operators run it. */
export class GatewayProcess {
  private static readonly running = new Set<GatewayProcess>();
  stdout = "";
  stderr = "";
  readonly exited: Promise<ProcessResult>;

  constructor(
    readonly child: ChildProcess,
  ) {
    child.stdout?.on("data", (chunk: Buffer) => (this.stdout += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (this.stderr += chunk.toString()));
    GatewayProcess.running.add(this);
    this.exited = new Promise((resolve) =>
      child.on("exit", (code, signal) => {
        GatewayProcess.running.delete(this);
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      }),
    );
  }

  /** For afterEach: a failed test must not leave a gateway running (and bound to the shared broker). */
  static async killAll(): Promise<void> {
    const left = [...GatewayProcess.running];
    for (const process of left) process.kill("SIGKILL");
    await Promise.all(left.map((process) => process.exited));
  }

  static start(args: string[], env: Record<string, string>): GatewayProcess {
    const child = spawn(GATEWAY_RUNTIME, [MAIN_JS, ...args], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new GatewayProcess(child);
  }

  /** Waits until stdout matches, or the process exits (then throws with its output). */
  async waitForOutput(pattern: RegExp, timeoutMs = 45_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.stdout.match(pattern);
      if (match) return match;
      if (this.child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`output ${pattern} not seen; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** The HTTP port from the `listening` line (other lines may name ports too: a broker connection's error, say). */
  async listeningPort(timeoutMs?: number): Promise<number> {
    const [, port] = await this.waitForOutput(/"port":(\d+)[^\n]*"msg":"listening"/, timeoutMs);
    return Number(port);
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    this.child.kill(signal);
  }
}
