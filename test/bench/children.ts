import { type ChildProcess, fork, type SpawnOptions, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Phase, PublisherCommand, PublisherReport } from "./ipc.js";

/**
 * Every process the runner starts goes through here, so that all of them — and
 * only them — are killed when the runner ends, however it ends.
 */
const started = new Map<ChildProcess, NodeJS.Signals>();

process.on("exit", () => {
  for (const [child, signal] of started) if (child.exitCode === null && child.signalCode === null) child.kill(signal);
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => process.exit(130));
}

/** Forks a sibling script of this file (compiled: `dist/test/bench/<script>`) with an IPC channel. */
export function forkBench(script: string, args: string[] = []): ChildProcess {
  const child = fork(fileURLToPath(new URL(script, import.meta.url)), args, { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  track(child, "SIGKILL");
  return child;
}

/**
 * Spawned servers get SIGTERM if the runner exits early: a SIGKILL would only
 * reach a `timeout` wrapper and orphan the server under it (which `timeout`
 * forwards SIGTERM to).
 */
export function spawnTracked(command: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, options);
  track(child, "SIGTERM");
  return child;
}

function track(child: ChildProcess, onExit: NodeJS.Signals): void {
  started.set(child, onExit);
  child.once("exit", () => started.delete(child));
}

/**
 * SIGTERM, then SIGKILL after `graceMs` (to `alsoKill` first: the process under
 * a wrapper); resolves once the process is gone.
 */
export async function stopChild(child: ChildProcess, graceMs = 10_000, alsoKill: number | null = null): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => {
    if (alsoKill !== null && alsoKill !== child.pid) {
      try {
        process.kill(alsoKill, "SIGKILL");
      } catch {
        // already gone
      }
    }
    child.kill("SIGKILL");
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

/** Waits `graceMs` for each child to exit by itself (after a `finish` it was sent), then stops the stragglers. */
export async function awaitExits(children: ChildProcess[], graceMs = 5_000): Promise<void> {
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      const timer = setTimeout(() => void stopChild(child, 1000), graceMs);
      await exited;
      clearTimeout(timer);
    }),
  );
}

/** Resolves with the first IPC message `accept` maps to a value; rejects on timeout or exit. */
export function nextMessage<T>(child: ChildProcess, what: string, timeoutMs: number, accept: (message: unknown) => T | undefined): Promise<T> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    const onMessage = (message: unknown): void => {
      const value = accept(message);
      if (value === undefined) return;
      cleanup();
      resolve(value);
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`${what}: process exited (code ${code}) first`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}

export interface PhaseTotal {
  count: number;
  maxLagMs: number;
}

/** The runner's side of a publisher child (amqp publisher, or the rawUws server itself). */
export class PublisherHandle {
  readonly child: ChildProcess;
  private readonly finals = new Map<Phase, PhaseTotal>();
  private readonly waiting = new Map<Phase, (total: PhaseTotal) => void>();
  error: string | null = null;

  constructor(child: ChildProcess) {
    this.child = child;
    child.on("message", (message: PublisherReport) => {
      if (message.type === "error") this.error = message.message;
      if (message.type !== "published" || !message.final) return;
      const total = { count: message.count, maxLagMs: message.maxLagMs };
      this.finals.set(message.phase, total);
      this.waiting.get(message.phase)?.(total);
    });
  }

  /** Waits for `ready`; rejects with the child's own error message when it reports one. */
  async ready(timeoutMs: number): Promise<Extract<PublisherReport, { type: "ready" }>> {
    const report = await nextMessage(this.child, "publisher ready", timeoutMs, (message) => {
      const report = message as PublisherReport;
      return report.type === "ready" || report.type === "error" ? report : undefined;
    });
    if (report.type === "error") throw new Error(report.message);
    return report;
  }

  send(command: PublisherCommand): void {
    if (this.child.connected) this.child.send(command);
  }

  /** The final published count of `phase` (after the publisher ended it by itself or on `end`). */
  final(phase: Phase, timeoutMs: number): Promise<PhaseTotal> {
    const known = this.finals.get(phase);
    if (known) return Promise.resolve(known);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`publisher: no final count for phase ${phase} within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.set(phase, (total) => {
        clearTimeout(timer);
        resolve(total);
      });
    });
  }
}
