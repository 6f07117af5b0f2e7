import { GatewayProcess } from "../support/gateway-process.js";
import { uniqueId } from "../support/test-gateway.js";

/**
 * A gateway as `bun dist/src/main.js` in a child process, for the `bun test`
 * suites (GatewayProcess spawns process.execPath, which is bun there; run
 * `npm run build` first). A suite's own vhost is test/support/rabbit-vhost.ts.
 */

export const BUN_JWT_SECRET = "bun-test-secret-that-is-long-enough-0123";
export const BUN_API_KEY = "bun-test-api-key-0123456789abcdef";
export const START_TIMEOUT_MS = 60_000;

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
    NODE_ID: uniqueId("bun"),
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
