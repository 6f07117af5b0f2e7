import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/index.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../", import.meta.url));

/** The variables compose.yaml requires (`${VAR:?}`); compose refuses to render without them. */
const requiredEnv = {
  JWT_SECRET: "compose-test-secret-0123456789-abcdef",
  API_KEYS: "compose-test-api-key-0123456789",
  GRAFANA_ADMIN_PASSWORD: "compose-test",
};

interface Service {
  image?: string;
  build?: { context: string };
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  volumes?: Array<string | { source: string; target: string }>;
  depends_on?: Record<string, { condition: string }>;
}

/** `docker-compose config` (Debian's v1; validates without a Docker engine), rendered as JSON. */
async function renderedCompose(env: Record<string, string>): Promise<{ services: Record<string, Service> }> {
  const { stdout } = await run("docker-compose", ["-f", "compose.yaml", "config"], { cwd: root, env: { PATH: process.env.PATH, ...env } });
  // docker-compose v1 only prints YAML; its own dependency python3-yaml turns it into JSON.
  const child = execFile("python3", ["-c", "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"]);
  child.stdin?.end(stdout);
  let json = "";
  child.stdout?.on("data", (chunk: Buffer) => (json += chunk.toString()));
  await new Promise<void>((resolve, reject) => child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`python3 exited ${code}`)))));
  return JSON.parse(json) as { services: Record<string, Service> };
}

let rendered: ReturnType<typeof renderedCompose> | undefined;
const services = async () => (await (rendered ??= renderedCompose(requiredEnv))).services;

describe("compose.yaml", () => {
  it("is valid under docker-compose config -q", async () => {
    const { stdout, stderr } = await run("docker-compose", ["-f", "compose.yaml", "config", "-q"], { cwd: root, env: { PATH: process.env.PATH, ...requiredEnv } });
    expect(stdout + stderr).toBe("");
  });

  it("refuses to render without the secrets instead of defaulting them", async () => {
    await expect(run("docker-compose", ["-f", "compose.yaml", "config", "-q"], { cwd: root, env: { PATH: process.env.PATH } })).rejects.toThrow(/JWT_SECRET/);
  });

  it("runs RabbitMQ, PostgreSQL, two gateways, a worker, nginx, Prometheus and Grafana, each with a healthcheck", async () => {
    const all = await services();
    expect(Object.keys(all).sort()).toEqual(["gateway-1", "gateway-2", "grafana", "nginx", "postgres", "prometheus", "rabbitmq", "worker"]);
    for (const [name, service] of Object.entries(all)) expect(service.healthcheck?.test.length, name).toBeGreaterThan(0);
    expect(all.rabbitmq?.image).toMatch(/^rabbitmq:3\.\d+-management$/);
  });

  it("gives each node a configuration the app accepts, with the role and a readiness healthcheck", async () => {
    const all = await services();
    const roles = { "gateway-1": "gateway", "gateway-2": "gateway", worker: "worker" } as const;
    for (const [name, role] of Object.entries(roles)) {
      const service = all[name] as Service;
      expect(service.build?.context, name).toBe(root.replace(/\/$/, ""));
      const config = loadConfig(service.environment ?? {});
      expect(config.role, name).toBe(role);
      expect(config.rabbitmqUrls.length, name).toBeGreaterThan(0);
      for (const url of config.rabbitmqUrls) expect(url, name).toMatch(/^amqp:\/\/sobranie:[^@]+@rabbitmq(-\d)?:5672/);
      expect(config.databaseUrl, name).toMatch(/@postgres:5432\/sobranie$/);
      expect(service.healthcheck?.test.join(" "), name).toContain("/readyz");
      expect(Object.keys(service.depends_on ?? {}).sort(), name).toEqual(["postgres", "rabbitmq"]);
    }
    // Stable node ids: stable queue names and metric labels across restarts.
    expect(["gateway-1", "gateway-2", "worker"].map((name) => all[name]?.environment?.NODE_ID)).toEqual(["gateway-1", "gateway-2", "worker-1"]);
  });

  it("mounts files that exist in the repository", async () => {
    const sources = Object.values(await services())
      .flatMap((service) => service.volumes ?? [])
      .map((volume) => (typeof volume === "string" ? volume.split(":")[0] : volume.source) as string)
      .filter((source) => source.startsWith("/"));
    expect(sources.length).toBeGreaterThanOrEqual(8);
    expect(sources.filter((source) => !existsSync(source))).toEqual([]);
    expect(existsSync(`${root}Dockerfile`)).toBe(true);
  });
});
