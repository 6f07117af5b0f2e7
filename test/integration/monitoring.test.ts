import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const monitoringDir = fileURLToPath(new URL("../../monitoring/", import.meta.url));

/** Runs promtool in monitoring/ (rule_files paths are relative); a non-zero exit rejects with its output. */
async function promtool(...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run("promtool", args, { cwd: monitoringDir });
    return stdout + stderr;
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`promtool ${args.join(" ")} failed:\n${failure.stdout ?? ""}${failure.stderr ?? failure.message}`);
  }
}

function read(name: string): string {
  return readFileSync(`${monitoringDir}${name}`, "utf8");
}

function alertNames(rules: string): string[] {
  return [...rules.matchAll(/^\s*- alert: (\w+)\s*$/gm)].map((match) => match[1] as string);
}

/** alertname → which kinds of cases alerts.test.yml has for it. */
function testedCases(tests: string): Map<string, { firing: boolean; quiet: boolean }> {
  const cases = new Map<string, { firing: boolean; quiet: boolean }>();
  for (const match of tests.matchAll(/alertname: (\w+)\n\s*exp_alerts:( \[\])?\n/g)) {
    const name = match[1] as string;
    const entry = cases.get(name) ?? { firing: false, quiet: false };
    if (match[2]) entry.quiet = true;
    else entry.firing = true;
    cases.set(name, entry);
  }
  return cases;
}

describe("monitoring/ (Prometheus config and alert rules)", () => {
  it("prometheus.yml is a valid configuration, rule files included", async () => {
    const output = await promtool("check", "config", "prometheus.yml");
    expect(output).toContain("SUCCESS");
  });

  it("alerts.yml passes promtool check rules", async () => {
    const output = await promtool("check", "rules", "alerts.yml");
    expect(output).toMatch(/SUCCESS: \d+ rules found/);
  });

  it("every rule has a summary, a description, a runbook line and a severity", () => {
    const rules = read("alerts.yml");
    const blocks = rules.split(/^\s*- alert: /m).slice(1);
    expect(blocks.length).toBeGreaterThanOrEqual(10);
    for (const block of blocks) {
      const name = block.split("\n")[0];
      expect(block, name).toMatch(/^\s+summary: \S/m);
      expect(block, name).toMatch(/^\s+description: \S/m);
      expect(block, name).toMatch(/^\s+runbook: \S/m);
      expect(block, name).toMatch(/^\s+severity: (critical|warning)$/m);
    }
  });

  it("alerts.test.yml has a firing and a quiet case for every rule", () => {
    const cases = testedCases(read("alerts.test.yml"));
    const missing = alertNames(read("alerts.yml")).filter((name) => !(cases.get(name)?.firing && cases.get(name)?.quiet));
    expect(missing).toEqual([]);
  });

  it("the rule unit tests pass (promtool test rules)", async () => {
    const output = await promtool("test", "rules", "alerts.test.yml");
    expect(output).toContain("SUCCESS");
  });

  it("rules only use sobranie_* metric names the gateway exports", async () => {
    const { PromMetrics } = await import("../../src/adapters/prometheus/prom-metrics.js");
    const exported = await new PromMetrics({ nodeId: "monitoring-test" }).registry.getMetricsAsJSON();
    const names = new Set(exported.flatMap((metric) => (String(metric.type) === "histogram" ? [`${metric.name}_bucket`] : [metric.name])));
    const used = new Set([...read("alerts.yml").matchAll(/\b(sobranie_[a-z0-9_]+|nodejs_[a-z0-9_]+)/g)].map((match) => match[1] as string));
    expect([...used].filter((name) => !names.has(name))).toEqual([]);
  });
});
