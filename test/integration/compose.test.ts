import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
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
  hostname?: string;
  ports?: Array<string | { target: number; published: number; host_ip?: string }>;
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

/** The RabbitMQ cluster's services, also their hostnames (node rabbit@<hostname>). */
const RABBITMQ_NODES = ["rabbitmq-1", "rabbitmq-2", "rabbitmq-3"] as const;

function mountSource(volume: string | { source: string; target: string }): string {
  return typeof volume === "string" ? (volume.split(":")[0] as string) : volume.source;
}

function mountTarget(volume: string | { source: string; target: string }): string {
  return typeof volume === "string" ? (volume.split(":")[1] as string) : volume.target;
}
const services = async () => (await (rendered ??= renderedCompose(requiredEnv))).services;

describe("compose.yaml", () => {
  it("is valid under docker-compose config -q", async () => {
    const { stdout, stderr } = await run("docker-compose", ["-f", "compose.yaml", "config", "-q"], { cwd: root, env: { PATH: process.env.PATH, ...requiredEnv } });
    expect(stdout + stderr).toBe("");
  });

  it("refuses to render without the secrets instead of defaulting them", async () => {
    await expect(run("docker-compose", ["-f", "compose.yaml", "config", "-q"], { cwd: root, env: { PATH: process.env.PATH } })).rejects.toThrow(/JWT_SECRET/);
  });

  it("runs a three-node RabbitMQ cluster, PostgreSQL, two gateways, a worker, nginx, Prometheus and Grafana, each with a healthcheck", async () => {
    const all = await services();
    expect(Object.keys(all).sort()).toEqual([
      "gateway-1",
      "gateway-2",
      "grafana",
      "nginx",
      "postgres",
      "prometheus",
      "rabbitmq-1",
      "rabbitmq-2",
      "rabbitmq-3",
      "worker",
    ]);
    for (const [name, service] of Object.entries(all)) expect(service.healthcheck?.test.length, name).toBeGreaterThan(0);
  });

  it("gives the three RabbitMQ nodes one 4.x image, their own hostname and data volume, one shared cookie and the same mounted config", async () => {
    const all = await services();
    const nodes = RABBITMQ_NODES.map((name) => all[name] as Service);
    for (const [index, node] of nodes.entries()) {
      const name = RABBITMQ_NODES[index] as string;
      expect(node.image, name).toMatch(/^rabbitmq:4\.\d+-management$/);
      expect(node.hostname, name).toBe(name);
      expect(node.volumes?.map(mountTarget).sort(), name).toEqual([
        "/etc/rabbitmq/definitions.json",
        "/etc/rabbitmq/enabled_plugins",
        "/etc/rabbitmq/rabbitmq.conf",
        "/var/lib/rabbitmq",
      ]);
      expect(node.healthcheck?.test.join(" "), name).toContain("check_port_connectivity");
      // No node waits for another: after a full stop each waits for its peers, so they start together.
      expect(node.depends_on, name).toBeUndefined();
    }
    expect(new Set(nodes.map((node) => node.image)).size).toBe(1);
    const dataVolumes = nodes.map((node) => node.volumes?.map(mountSource).find((source) => !source.startsWith("/")));
    expect(new Set(dataVolumes).size).toBe(RABBITMQ_NODES.length);
    const cookies = nodes.map((node) => node.environment?.RABBITMQ_ERLANG_COOKIE);
    expect(cookies[0]).toMatch(/\S{20,}/);
    expect(new Set(cookies).size).toBe(1);
    // The management UI from rabbitmq-1 only, on loopback.
    expect(nodes.map((node) => (node.ports ?? []).map(String))).toEqual([[expect.stringMatching(/^127\.0\.0\.1:15672:15672/)], [], []]);
  });

  it("lists exactly the compose nodes as rabbitmq.conf's cluster peers", async () => {
    const conf = readFileSync(`${root}rabbitmq/rabbitmq.conf`, "utf8");
    expect(conf).toMatch(/^cluster_formation\.peer_discovery_backend = classic_config$/m);
    const peers = [...conf.matchAll(/^cluster_formation\.classic_config\.nodes\.\d+ = rabbit@(\S+)$/gm)].map((match) => match[1]);
    const all = await services();
    expect(peers).toEqual(RABBITMQ_NODES.map((name) => all[name]?.hostname));
  });

  it("gives each node a configuration the app accepts, with the role and a readiness healthcheck", async () => {
    const all = await services();
    const roles = { "gateway-1": "gateway", "gateway-2": "gateway", worker: "worker" } as const;
    for (const [name, role] of Object.entries(roles)) {
      const service = all[name] as Service;
      expect(service.build?.context, name).toBe(root.replace(/\/$/, ""));
      const config = loadConfig(service.environment ?? {});
      expect(config.role, name).toBe(role);
      // Every node of the cluster, in order, with the sobranie user.
      expect(config.rabbitmqUrls.map((url) => new URL(url).host), name).toEqual(RABBITMQ_NODES.map((node) => `${node}:5672`));
      for (const url of config.rabbitmqUrls) expect(url, name).toMatch(/^amqp:\/\/sobranie:[^@]+@rabbitmq-\d:5672$/);
      expect(config.databaseUrl, name).toMatch(/@postgres:5432\/sobranie$/);
      expect(service.healthcheck?.test.join(" "), name).toContain("/readyz");
      // The first node healthy (a booted node is a serving cluster), the others only started.
      expect(service.depends_on, name).toEqual({
        postgres: { condition: "service_healthy" },
        "rabbitmq-1": { condition: "service_healthy" },
        "rabbitmq-2": { condition: "service_started" },
        "rabbitmq-3": { condition: "service_started" },
      });
    }
    // Stable node ids: stable queue names and metric labels across restarts.
    expect(["gateway-1", "gateway-2", "worker"].map((name) => all[name]?.environment?.NODE_ID)).toEqual(["gateway-1", "gateway-2", "worker-1"]);
  });

  it("mounts files that exist in the repository", async () => {
    const sources = Object.values(await services())
      .flatMap((service) => service.volumes ?? [])
      .map(mountSource)
      .filter((source) => source.startsWith("/"));
    expect(sources.length).toBeGreaterThanOrEqual(8);
    expect(sources.filter((source) => !existsSync(source))).toEqual([]);
    expect(existsSync(`${root}Dockerfile`)).toBe(true);
  });
});
