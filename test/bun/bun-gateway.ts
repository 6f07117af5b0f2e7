import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { GatewayProcess } from "../support/gateway-process.js";

/**
 * A gateway as `bun dist/src/main.js` in a child process, for the `bun test`
 * suites (GatewayProcess spawns process.execPath, which is bun there; run
 * `npm run build` first), and a RabbitMQ vhost of its own for it. Plain
 * Node APIs only, so this file does not load the app into the test process.
 */

const run = promisify(execFile);
const RABBITMQ_URL = process.env.RABBITMQ_URL ?? "amqp://guest:guest@127.0.0.1:5672";
export const BUN_JWT_SECRET = "bun-test-secret-that-is-long-enough-0123";
export const BUN_API_KEY = "bun-test-api-key-0123456789abcdef";
export const START_TIMEOUT_MS = 60_000;

export function unique(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString("hex")}`;
}

export interface BunGateway {
  readonly process: GatewayProcess;
  readonly port: number;
  readonly httpUrl: string;
  readonly wsUrl: string;
  /** SIGTERM, then the exit code (0: the written shutdown order completed). */
  stop(): Promise<number | null>;
}

/** `bun dist/src/main.js` with `env`, once its log says ready; throws (with its output) if it exits first or does not run on Bun's server. */
export async function startBunGateway(env: Record<string, string>): Promise<BunGateway> {
  const child = GatewayProcess.start([], {
    HOST: "127.0.0.1",
    PORT: "0",
    NODE_ID: unique("bun"),
    JWT_SECRET: BUN_JWT_SECRET,
    API_KEYS: BUN_API_KEY,
    DRAIN_GRACE_MS: "200",
    BIND_LINGER_MS: "200",
    ...env,
  });
  const [listening] = await child.waitForOutput(/\{[^\n]*"msg":"listening"[^\n]*\}/, START_TIMEOUT_MS);
  await child.waitForOutput(/"msg":"ready"/, START_TIMEOUT_MS);
  const { port, uws } = JSON.parse(listening) as { port: number; uws: string };
  if (uws !== `bun-${process.versions.bun}`) throw new Error(`the gateway runs on ${uws}, not on this Bun (${process.versions.bun})`);
  return {
    process: child,
    port,
    httpUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/realtime/ws`,
    stop: async () => {
      child.kill("SIGTERM");
      return (await child.exited).code;
    },
  };
}

export interface BunVhost {
  /** The broker URL of the vhost. */
  readonly url: string;
  drop(): Promise<void>;
}

/** A RabbitMQ vhost of its own (rabbitmqctl on the shared broker), so a suite's exchanges and queues meet no other run's. */
export async function createBunVhost(prefix: string): Promise<BunVhost> {
  const name = unique(prefix);
  await run("rabbitmqctl", ["add_vhost", name]);
  await run("rabbitmqctl", ["set_permissions", "-p", name, "guest", ".*", ".*", ".*"]);
  const url = new URL(RABBITMQ_URL);
  url.pathname = `/${encodeURIComponent(name)}`;
  return { url: url.toString(), drop: async () => void (await run("rabbitmqctl", ["delete_vhost", name]).catch(() => undefined)) };
}
