import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ChildService, replaceExactly } from "./child-service.js";

const MONITORING = fileURLToPath(new URL("../../monitoring/", import.meta.url));

export interface PrometheusAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: "pending" | "firing";
  activeAt: string;
  value: string;
}

export interface PrometheusSample {
  metric: Record<string, string>;
  value: [number, string];
}

/**
 * A real Prometheus server (the Debian package) as a child process on a
 * loopback port, with a private TSDB directory. Its config is the shipped
 * `monitoring/prometheus.yml` with only the static targets rewritten
 * (`targets` maps each shipped `host:port` to its loopback address; every
 * shipped target must be mapped), and its rule file the shipped
 * `monitoring/alerts.yml` with only the `for:` of the rules in `ruleFor`
 * replaced, so a test does not wait out production hold times.
 */
export class PrometheusProcess {
  private constructor(
    private readonly service: ChildService,
    private readonly dir: string,
    readonly port: number,
    /** The rule file Prometheus actually loaded (for the report). */
    readonly rules: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(options: { port: number; targets: Record<string, string>; ruleFor?: Record<string, string> }): Promise<PrometheusProcess> {
    const dir = await mkdtemp(join(tmpdir(), "sobranie-prometheus-"));
    let config = await readFile(join(MONITORING, "prometheus.yml"), "utf8");
    for (const [shipped, local] of Object.entries(options.targets)) {
      if (!config.includes(`"${shipped}"`)) throw new Error(`no scrape target "${shipped}" in the shipped prometheus.yml`);
      config = config.replaceAll(`"${shipped}"`, `"${local}"`);
    }
    const leftover = [...config.replace(/^\s*#.*$/gm, "").matchAll(/targets:\s*\[([^\]]*)\]/g)].flatMap((match) => match[1]!.split(",")).map((target) => target.trim().replace(/"/g, "")).filter((target) => !target.startsWith("127.0.0.1:"));
    if (leftover.length > 0) throw new Error(`shipped scrape targets not mapped to loopback: ${leftover.join(", ")}`);
    let rules = await readFile(join(MONITORING, "alerts.yml"), "utf8");
    for (const [alert, holdFor] of Object.entries(options.ruleFor ?? {})) {
      // Only the first `for:` after `- alert: <name>` and before the next rule.
      rules = replaceExactly(rules, new RegExp(`(- alert: ${alert}\\n(?:(?!\\s*- alert:)[^\\n]*\\n)*?\\s*for: )\\S+`), `$1${holdFor}`);
    }
    await writeFile(join(dir, "prometheus.yml"), config);
    await writeFile(join(dir, "alerts.yml"), rules);
    const service = new ChildService("prometheus", "prometheus", [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${options.port}`,
      "--log.level=warn",
    ]);
    const prometheus = new PrometheusProcess(service, dir, options.port, rules);
    await service.waitUntil(async () => (await fetch(`${prometheus.url}/-/ready`)).ok, 60_000, "ready").catch(async (error: unknown) => {
      await prometheus.stop();
      throw error;
    });
    return prometheus;
  }

  /** An instant query through the HTTP API. */
  async query(expr: string): Promise<PrometheusSample[]> {
    const response = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await response.json()) as { status: string; data: { result: PrometheusSample[] }; error?: string };
    if (body.status !== "success") throw new Error(`query ${expr}: ${body.error}`);
    return body.data.result;
  }

  /** Pending and firing alerts (`/api/v1/alerts`). */
  async alerts(): Promise<PrometheusAlert[]> {
    const response = await fetch(`${this.url}/api/v1/alerts`);
    const body = (await response.json()) as { status: string; data: { alerts: PrometheusAlert[] } };
    if (body.status !== "success") throw new Error("alerts API failed");
    return body.data.alerts;
  }

  async stop(): Promise<void> {
    await this.service.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
