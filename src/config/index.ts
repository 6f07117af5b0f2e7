import { randomBytes, randomInt } from "node:crypto";
import { hostname } from "node:os";
import * as v from "valibot";
import { BUILT_IN_NAMESPACES, type NamespacePolicy } from "../core/namespaces.js";
import type { RetentionPolicy } from "../core/ports/event-store.js";
import { ConfigError, type ConfigProblem } from "./error.js";
import { EnvSchema, LOG_LEVELS, ROLES, VARIABLES, type Env, type VariableName } from "./schema.js";
import { PUSHER_WEBHOOK_EVENTS, type AddressRange, type ApiKeyEntry } from "./variables.js";

export { ConfigError, type ConfigProblem } from "./error.js";
export type { ApiKeyEntry } from "./variables.js";
export { ENV_VARS, formatEnvHelp, formatEnvMarkdown, type EnvVarDoc } from "./help.js";

export type Role = (typeof ROLES)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The validated configuration. Every duration ends in `Ms`, every size in `Bytes`. */
export interface Config {
  readonly role: Role;
  readonly nodeId: string;
  /** DEPLOYMENT_ID: scopes presence between nodes to this deployment; unset: the vhost-wide default exchange. */
  readonly deploymentId: string | undefined;
  readonly logLevel: LogLevel;
  readonly http: { readonly port: number; readonly host: string };
  /** The RabbitMQ nodes (or one load balancer), tried in rotation; empty: the embedded in-process broker. */
  readonly rabbitmqUrls: readonly string[];
  /** Publisher confirms not received within this fail (and are retried where the publisher retries). */
  readonly confirmTimeoutMs: number;
  /** A gateway without its broker this long refuses new connections and moves its clients away. */
  readonly brokerLossGraceMs: number;
  /** Unset: the embedded store. */
  readonly databaseUrl: string | undefined;
  readonly jwt: JwtConfig;
  /** Keys are unique and each has at least one scope; empty: the backend HTTP API is disabled. */
  readonly apiKeys: readonly ApiKeyEntry[];
  /** True when no API_KEYS were set on embedded defaults and one demo key with every scope was made up (the app prints it). */
  readonly apiKeysGenerated: boolean;
  readonly apiRate: { readonly perSec: number; readonly burst: number };
  readonly httpLimits: HttpLimitsConfig;
  readonly heartbeatMs: number;
  readonly presenceTtlMs: number;
  readonly presence: { readonly maxListedMembers: number; readonly fanoutPerSec: number; readonly fanoutDeliveriesPerSec: number };
  readonly limits: LimitsConfig;
  readonly nodeQueue: {
    readonly maxLength: number;
    readonly messageTtlMs: number;
  };
  readonly bindLingerMs: number;
  /** Namespaces bound as a whole (`<ns>.#`) on the node queue instead of per channel; empty by default. */
  readonly bindWholeNamespaces: readonly string[];
  readonly drainGraceMs: number;
  readonly shutdownTimeoutMs: number;
  /** Built-ins first, then the `NAMESPACES` extras; names are unique. */
  readonly namespaces: readonly NamespacePolicy[];
  readonly durable: DurableConfig;
  readonly outbox: OutboxConfig;
  /** Apps of the Pusher-protocol endpoint; empty: the endpoint is off. */
  readonly pusherApps: readonly PusherAppConfig[];
  /** Pusher prefix → namespace, for namespaces whose Pusher channels are not named after them; empty by default. */
  readonly pusherChannelPrefixes: Readonly<Record<string, string>>;
  readonly webhooks: WebhookConfig;
}

/** One `PUSHER_APPS` entry with its defaults filled in (the shape adapters/pusher's PusherApp reads). */
export interface PusherAppConfig {
  readonly id: string;
  readonly key: string;
  readonly secret: string;
  readonly enabled: boolean;
  readonly clientEvents: boolean;
  readonly maxConnections: number | undefined;
  readonly signinTimeoutMs: number | undefined;
  readonly webhooks: readonly { readonly url: string; readonly events: readonly string[] }[];
}

/** The worker's Pusher webhook sending (docs/pusher.md, "Webhooks"). */
export interface WebhookConfig {
  readonly timeoutMs: number;
  readonly batchWaitMs: number;
  readonly batchMaxEvents: number;
  readonly retryInitialMs: number;
  readonly retryMaxDelayMs: number;
  readonly giveUpAfterMs: number;
}

/** The worker's PostgreSQL outbox relay (runs only with DATABASE_URL). */
export interface OutboxConfig {
  readonly sweepIntervalMs: number;
  readonly batchSize: number;
  readonly keepPublishedMs: number;
}

/** Durable namespaces: the worker's batching, retention, and recovery on the gateway. */
export interface DurableConfig {
  readonly recoveryMaxEvents: number;
  /** One policy per durable namespace. */
  readonly retention: readonly RetentionPolicy[];
  readonly retentionIntervalMs: number;
  readonly persistMaxBatch: number;
  readonly persistMaxBatchWaitMs: number;
}

/**
 * Guarantee: at least one of `secret`, `publicKeyPem`, `jwksUrl` is set, and
 * never both `publicKeyPem` and `jwksUrl`. `generated` is true when none was
 * configured on embedded defaults and `secret` was made up at start (the app
 * then prints a demo token signed with it).
 */
export interface JwtConfig {
  readonly secret: string | undefined;
  readonly publicKeyPem: string | undefined;
  readonly jwksUrl: string | undefined;
  readonly issuer: string | undefined;
  readonly audience: string | undefined;
  readonly generated: boolean;
  /** TOKEN_MAX_LIFETIME_MS: how long revocations are kept when the token's own exp is not known. */
  readonly maxTokenLifetimeMs: number;
}

/** HTTP request limits (docs/protocol.md §7.1); rates per second, bursts in requests. */
export interface HttpLimitsConfig {
  readonly user: { readonly perSec: number; readonly burst: number };
  readonly source: { readonly perSec: number; readonly burst: number };
  readonly apiKeyFailuresPerMin: number;
  /** Peers whose X-Forwarded-For names the client. */
  readonly trustedProxies: readonly AddressRange[];
}

export interface LimitsConfig {
  readonly maxFrameBytes: number;
  readonly rateConnectionPerSec: number;
  readonly rateConnectionBurst: number;
  readonly rateUserPerSec: number;
  readonly rateUserBurst: number;
  readonly abuseCloseMs: number;
  readonly maxSubscriptions: number;
  readonly maxConnectionsPerUser: number;
  readonly maxConnections: number;
  readonly sendBufferBytes: number;
}

/**
 * Validates the environment and returns the configuration, or throws
 * `ConfigError` listing every bad variable. Only variables in `ENV_VARS` are
 * read; an empty (or all-blank) value counts as unset. The caller passes
 * `process.env`: this module is the only one that should ever see it.
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = v.safeParse(EnvSchema, pickVariables(env));
  if (!parsed.success) throw new ConfigError(parsed.issues.map(toProblem));
  return toConfig(parsed.output);
}

function pickVariables(env: Record<string, string | undefined>): Partial<Record<VariableName, string>> {
  const picked: Partial<Record<VariableName, string>> = {};
  for (const name of Object.keys(VARIABLES) as VariableName[]) {
    const value = env[name];
    if (value !== undefined && value.trim() !== "") picked[name] = value;
  }
  return picked;
}

/** The first path key is the variable; deeper keys (inside NAMESPACES) prefix the message. */
function toProblem(issue: v.BaseIssue<unknown>): ConfigProblem {
  const [first, ...rest] = issue.path ?? [];
  const variable = typeof first?.key === "string" ? first.key : "environment";
  const where = rest.map((item) => (typeof item.key === "number" ? `[${item.key}]` : `.${String(item.key)}`)).join("");
  return { variable, message: where === "" ? issue.message : `${where.replace(/^\./, "")}: ${issue.message}` };
}

function toConfig(env: Env): Config {
  const jwtConfigured = env.JWT_SECRET !== undefined || env.JWT_PUBLIC_KEY !== undefined || env.JWT_JWKS_URL !== undefined;
  // EnvSchema already rejected "RABBITMQ_URL without any JWT source", so a
  // generated secret only ever happens on embedded defaults.
  const generated = !jwtConfigured;
  const namespaces = [...BUILT_IN_NAMESPACES, ...(env.NAMESPACES ?? [])];
  const embedded = env.RABBITMQ_URL === undefined;
  return {
    role: env.ROLE,
    nodeId: env.NODE_ID ?? defaultNodeId(),
    deploymentId: env.DEPLOYMENT_ID,
    logLevel: env.LOG_LEVEL,
    http: { port: env.PORT, host: env.HOST },
    rabbitmqUrls: env.RABBITMQ_URL ?? [],
    confirmTimeoutMs: env.RABBITMQ_CONFIRM_TIMEOUT_MS,
    brokerLossGraceMs: env.BROKER_LOSS_GRACE_MS,
    databaseUrl: env.DATABASE_URL,
    jwt: {
      secret: generated ? randomBytes(32).toString("base64url") : env.JWT_SECRET,
      publicKeyPem: env.JWT_PUBLIC_KEY,
      jwksUrl: env.JWT_JWKS_URL,
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      generated,
      maxTokenLifetimeMs: env.TOKEN_MAX_LIFETIME_MS,
    },
    apiKeys: env.API_KEYS ?? (embedded ? [{ key: randomBytes(24).toString("base64url"), scopes: ["*"] }] : []),
    apiKeysGenerated: env.API_KEYS === undefined && embedded,
    apiRate: { perSec: env.API_RATE_PER_SEC, burst: env.API_RATE_BURST },
    httpLimits: {
      user: { perSec: env.HTTP_USER_RATE_PER_SEC, burst: env.HTTP_USER_BURST },
      source: { perSec: env.HTTP_SOURCE_RATE_PER_SEC, burst: env.HTTP_SOURCE_BURST },
      apiKeyFailuresPerMin: env.API_KEY_FAILURES_PER_MIN,
      trustedProxies: env.TRUSTED_PROXIES ?? [],
    },
    heartbeatMs: env.HEARTBEAT_MS,
    presenceTtlMs: env.PRESENCE_TTL_MS,
    presence: {
      maxListedMembers: env.PRESENCE_MAX_LISTED,
      fanoutPerSec: env.PRESENCE_FANOUT_PER_SEC,
      fanoutDeliveriesPerSec: env.PRESENCE_FANOUT_DELIVERIES_PER_SEC,
    },
    limits: {
      maxFrameBytes: env.MAX_FRAME_BYTES,
      rateConnectionPerSec: env.RATE_CONNECTION_PER_SEC,
      rateConnectionBurst: env.RATE_CONNECTION_BURST,
      rateUserPerSec: env.RATE_USER_PER_SEC,
      rateUserBurst: env.RATE_USER_BURST,
      abuseCloseMs: env.ABUSE_CLOSE_MS,
      maxSubscriptions: env.MAX_SUBSCRIPTIONS,
      maxConnectionsPerUser: env.MAX_CONNECTIONS_PER_USER,
      maxConnections: env.MAX_CONNECTIONS,
      sendBufferBytes: env.SEND_BUFFER_BYTES,
    },
    nodeQueue: {
      maxLength: env.NODE_QUEUE_MAX_LENGTH,
      messageTtlMs: env.NODE_QUEUE_MESSAGE_TTL_MS,
    },
    bindLingerMs: env.BIND_LINGER_MS,
    bindWholeNamespaces: env.BIND_WHOLE_NAMESPACES ?? [],
    drainGraceMs: env.DRAIN_GRACE_MS,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    namespaces,
    durable: {
      recoveryMaxEvents: env.RECOVERY_MAX_EVENTS,
      retention: namespaces
        .filter((policy) => policy.durable)
        .map((policy) => ({
          namespace: policy.name,
          maxAgeMs: env.RETENTION?.[policy.name]?.maxAgeMs ?? env.RETENTION_MAX_AGE_MS,
          maxPerChannel: env.RETENTION?.[policy.name]?.maxPerChannel ?? env.RETENTION_MAX_PER_CHANNEL,
        })),
      retentionIntervalMs: env.RETENTION_INTERVAL_MS,
      persistMaxBatch: env.PERSIST_MAX_BATCH,
      persistMaxBatchWaitMs: env.PERSIST_MAX_BATCH_WAIT_MS,
    },
    outbox: {
      sweepIntervalMs: env.OUTBOX_SWEEP_MS,
      batchSize: env.OUTBOX_BATCH,
      keepPublishedMs: env.OUTBOX_KEEP_PUBLISHED_MS,
    },
    pusherChannelPrefixes: env.PUSHER_CHANNEL_PREFIXES ?? {},
    pusherApps: (env.PUSHER_APPS ?? []).map((app) => ({
      id: app.id,
      key: app.key,
      secret: app.secret,
      enabled: app.enabled,
      clientEvents: app.clientEvents,
      maxConnections: app.maxConnections,
      signinTimeoutMs: app.signinTimeoutMs,
      webhooks: app.webhooks.map((hook) => ({ url: hook.url, events: hook.events ?? [...PUSHER_WEBHOOK_EVENTS] })),
    })),
    webhooks: {
      timeoutMs: env.WEBHOOK_TIMEOUT_MS,
      batchWaitMs: env.WEBHOOK_BATCH_WAIT_MS,
      batchMaxEvents: env.WEBHOOK_BATCH_MAX_EVENTS,
      retryInitialMs: env.WEBHOOK_RETRY_INITIAL_MS,
      retryMaxDelayMs: env.WEBHOOK_RETRY_MAX_DELAY_MS,
      giveUpAfterMs: env.WEBHOOK_GIVE_UP_AFTER_MS,
    },
  };
}

const SUFFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/**
 * `<sanitized hostname>-<6 random [a-z0-9]>`: unique per process even when
 * two nodes share a host name (containers), and always a valid NODE_ID.
 */
export function defaultNodeId(host: string = hostname()): string {
  const base = host.replace(/[^A-Za-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 57) || "node";
  let suffix = "";
  for (let i = 0; i < 6; i++) suffix += SUFFIX_ALPHABET[randomInt(SUFFIX_ALPHABET.length)];
  return `${base}-${suffix}`;
}
