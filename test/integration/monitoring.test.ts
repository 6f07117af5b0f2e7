import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { startTestGateway } from "../support/test-gateway.js";

const run = promisify(execFile);
const monitoringDir = fileURLToPath(new URL("../../monitoring/", import.meta.url));

/** Runs promtool in monitoring/ (rule_files paths are relative) with `stdin`; a non-zero exit rejects with its output. */
async function promtool(args: string[], stdin = ""): Promise<string> {
  try {
    const pending = run("promtool", args, { cwd: monitoringDir });
    pending.child.stdin?.end(stdin);
    const { stdout, stderr } = await pending;
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
    const output = await promtool(["check", "config", "prometheus.yml"]);
    expect(output).toContain("SUCCESS");
  });

  it("alerts.yml passes promtool check rules", async () => {
    const output = await promtool(["check", "rules", "alerts.yml"]);
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
    const output = await promtool(["test", "rules", "alerts.test.yml"]);
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

describe("the gateway's /metrics", () => {
  it("passes promtool check metrics (names, types and help as Prometheus expects)", async () => {
    const gateway = await startTestGateway();
    try {
      const response = await fetch(`${gateway.httpUrl}/metrics`);
      expect(response.status).toBe(200);
      const exposition = await response.text();
      expect(exposition).toContain("sobranie_ws_connections_active");
      await expect(promtool(["check", "metrics"], exposition)).resolves.toBe("");
    } finally {
      await gateway.stop();
    }
  });
});

describe("monitoring/grafana (dashboard and provisioning)", () => {
  interface Panel { type: string; title: string; datasource?: { uid: string }; targets?: Array<{ expr: string }> }
  const dashboard = JSON.parse(read("grafana/dashboards/sobranie-realtime.json")) as { uid: string; panels: Panel[] };
  const queries = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));

  it("points every panel at the provisioned datasource, and the provider at the mounted folder", () => {
    const datasourceUid = /uid: (\S+)/.exec(read("grafana/provisioning/datasources/prometheus.yml"))?.[1];
    expect(datasourceUid).toBe("sobranie-prometheus");
    for (const panel of dashboard.panels.filter((p) => p.type !== "row")) expect(panel.datasource?.uid, panel.title).toBe(datasourceUid);
    expect(read("grafana/provisioning/dashboards/sobranie.yml")).toContain("path: /var/lib/grafana/dashboards");
  });

  it("covers the operator's questions", () => {
    const titles = dashboard.panels.map((panel) => panel.title).join("\n");
    for (const wanted of ["Connections", "Deliveries/s by namespace", "Delivery latency", "Frames rejected by reason", "Dead letters", "AMQP connected", "AMQP reconnects", "bindings", "Persist queue", "Event-loop lag", "Memory"]) {
      expect(titles.toLowerCase(), wanted).toContain(wanted.toLowerCase());
    }
  });

  it("has only queries promtool parses (Grafana variables substituted)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sobranie-dashboard-"));
    try {
      const rules = queries.map((expr, index) => {
        const promql = expr.replaceAll("$__rate_interval", "1m").replaceAll("$server_id", ".*");
        return `      - record: dashboard:query_${index}\n        expr: ${JSON.stringify(promql)}`;
      });
      writeFileSync(join(dir, "queries.yml"), `groups:\n  - name: dashboard\n    rules:\n${rules.join("\n")}\n`);
      await expect(promtool(["check", "rules", join(dir, "queries.yml")])).resolves.toContain(`SUCCESS: ${queries.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("uses only sobranie_* metric names the gateway exports", async () => {
    const { PromMetrics } = await import("../../src/adapters/prometheus/prom-metrics.js");
    const exported = await new PromMetrics({ nodeId: "monitoring-test" }).registry.getMetricsAsJSON();
    const names = new Set(exported.flatMap((metric) => (String(metric.type) === "histogram" ? [`${metric.name}_bucket`] : [metric.name])));
    const used = new Set(queries.flatMap((expr) => [...expr.matchAll(/\b((?:sobranie|nodejs|process)_[a-z0-9_]+)/g)].map((match) => match[1] as string)));
    expect([...used].filter((name) => !names.has(name))).toEqual([]);
  });
});
