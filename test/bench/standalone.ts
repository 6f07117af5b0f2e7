import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/**
 * What the benchmarks that run on their own (`bench:durable`, `bench:control`,
 * `bench:failover`; not runner scenarios) share: their command line, the
 * processes they wait for, the JSON they write.
 */

const args = process.argv.slice(2);

/** `--name N` on the command line, or `fallback`. */
export function numberOption(name: string, fallback: number): number {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? Number(args[index + 1]) : fallback;
}

/** `--json FILE`: where to write the report, if anywhere. */
export const JSON_FILE: string | undefined = args.includes("--json") ? args[args.indexOf("--json") + 1] : undefined;

export function writeJsonReport(report: unknown): void {
  if (JSON_FILE === undefined) return;
  mkdirSync(dirname(JSON_FILE), { recursive: true });
  writeFileSync(JSON_FILE, JSON.stringify(report, null, 2));
}

/** Runs a command to completion, output discarded (rabbitmqctl, psql); throws when it fails. */
export function sh(command: string, commandArgs: string[]): void {
  execFileSync(command, commandArgs, { stdio: "ignore" });
}

/** Resolves once the node on `port` answers /readyz 200; throws after 60 s. */
export async function waitReady(port: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const status = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status, () => 0);
    if (status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`node on port ${port} not ready within 60 s`);
}
