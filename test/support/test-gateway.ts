import { randomBytes } from "node:crypto";
import { SignJWT } from "jose";
import { loadConfig } from "../../src/config/index.js";
import { startApp, type RunningApp } from "../../src/app/index.js";
import { silentLogger } from "@sobranie/protocol/runtime/logger";

export const RABBITMQ_URL = process.env.RABBITMQ_URL ?? "amqp://guest:guest@127.0.0.1:5672";
export const TEST_JWT_SECRET = "test-secret-that-is-long-enough-0123456789";

export interface TestGateway {
  readonly app: RunningApp;
  readonly port: number;
  readonly nodeId: string;
  readonly wsUrl: string;
  readonly httpUrl: string;
  stop(): Promise<void>;
}

export function uniqueId(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString("hex")}`;
}

/**
 * Starts a gateway in this process on a free port, against the real RabbitMQ
 * unless `embedded` is set, and waits until it is ready.
 */
export async function startTestGateway(env: Record<string, string> = {}, options: { embedded?: boolean } = {}): Promise<TestGateway> {
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    NODE_ID: uniqueId("test"),
    JWT_SECRET: TEST_JWT_SECRET,
    DRAIN_GRACE_MS: "200",
    BIND_LINGER_MS: "200",
    LOG_LEVEL: "silent",
    ...(options.embedded ? {} : { RABBITMQ_URL, ROLE: "gateway" }),
    ...env,
  });
  const app = await startApp(config, { logger: silentLogger });
  await app.ready;
  return {
    app,
    port: app.port,
    nodeId: app.nodeId,
    wsUrl: `ws://127.0.0.1:${app.port}/realtime/ws`,
    httpUrl: `http://127.0.0.1:${app.port}`,
    stop: () => app.stop(),
  };
}

export interface TokenClaims {
  sub?: string;
  channels?: string[];
  info?: unknown;
  expiresInSec?: number;
  secret?: string;
}

/** An HS256 client token; `expiresInSec` may be negative for an expired one. */
export async function signToken(claims: TokenClaims = {}): Promise<string> {
  const nowSec = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {};
  if (claims.channels) payload.channels = claims.channels;
  if (claims.info !== undefined) payload.info = claims.info;
  const jwt = new SignJWT(payload).setProtectedHeader({ alg: "HS256" }).setIssuedAt(nowSec).setExpirationTime(nowSec + (claims.expiresInSec ?? 3600));
  if (claims.sub !== "") jwt.setSubject(claims.sub ?? "u1");
  return jwt.sign(new TextEncoder().encode(claims.secret ?? TEST_JWT_SECRET));
}

export interface SubscriptionTokenClaims {
  sub?: string;
  /** Omitted: no `channel` claim (then it is a connection token, refused as a subscription token). */
  channel?: string;
  expiresInSec?: number;
  jti?: string;
  /** Seconds since the epoch; default now. */
  iat?: number;
  secret?: string;
}

/** An HS256 subscription token (docs/protocol.md §10): `sub`, `channel`, `exp`, `iat`, and `jti` when given. */
export async function signSubscriptionToken(claims: SubscriptionTokenClaims): Promise<string> {
  const nowSec = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {};
  if (claims.channel !== undefined) payload.channel = claims.channel;
  const jwt = new SignJWT(payload)
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(claims.sub ?? "u1")
    .setIssuedAt(claims.iat ?? nowSec)
    .setExpirationTime(nowSec + (claims.expiresInSec ?? 600));
  if (claims.jti !== undefined) jwt.setJti(claims.jti);
  return jwt.sign(new TextEncoder().encode(claims.secret ?? TEST_JWT_SECRET));
}
