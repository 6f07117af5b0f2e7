import * as v from "valibot";
import { MAX_TIMER_MS } from "@sobranie/protocol/runtime/clock";
import { BUILT_IN_NAMESPACES, type NamespacePolicy } from "../core/namespaces.js";
import { namespaceOfPublishScope } from "../core/api-key-scopes.js";
import {
  addressRanges,
  apiKeys,
  brokerUrls,
  retention,
  integer,
  namespaceNames,
  namespaces,
  oneOf,
  publicKeyPem,
  pusherApps,
  pusherChannelPrefixes,
  url,
} from "./variables.js";

/**
 * Every environment variable the process reads, in one table: its default
 * (as the string an operator would write), a one-line description and the
 * schema that turns the string into a typed value. `ENV_VARS`, `--help`, the
 * configuration table of docs/operations.md and `EnvSchema` are all derived
 * from it, so they cannot drift apart.
 *
 * A default of `undefined` means "unset" (the variable is optional, or its
 * default is computed at load time: see `defaultText`).
 */
interface Variable<TSchema extends v.GenericSchema<string, unknown>, TDefault extends string | undefined> {
  readonly default: TDefault;
  /** Shown instead of `default` when the default is computed (NODE_ID). */
  readonly defaultText?: string;
  readonly description: string;
  readonly schema: TSchema;
}

function variable<TSchema extends v.GenericSchema<string, unknown>, const TDefault extends string | undefined>(
  defaultValue: TDefault,
  description: string,
  schema: TSchema,
  defaultText?: string,
): Variable<TSchema, TDefault> {
  return { default: defaultValue, description, schema, ...(defaultText === undefined ? {} : { defaultText }) };
}

/** Node ids become queue names and label values: keep them short and plain. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** A deployment id becomes one word of an exchange name (`sobranie.presence.<id>`): no dot, no wildcard, one case. */
export const DEPLOYMENT_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export const ROLES = ["gateway", "worker", "all"] as const;

const durationMs = (min: number) => integer(min, MAX_TIMER_MS);
const positive = integer(1);

export const VARIABLES = {
  PORT: variable("8080", "HTTP/WebSocket listen port (0 picks a free port)", integer(0, 65_535)),
  HOST: variable(
    "0.0.0.0",
    "address to listen on",
    v.pipe(v.string(), v.regex(/^[A-Za-z0-9.:_%[\]-]+$/, "must be a host name or an IP address")),
  ),
  NODE_ID: variable(
    undefined,
    "this node's id: per-node queue name and metrics label",
    v.pipe(
      v.string(),
      v.regex(NODE_ID_PATTERN, (issue) => `must match ${NODE_ID_PATTERN.source}, got "${issue.input}"`),
    ),
    "<hostname>-<6 random chars>",
  ),
  DEPLOYMENT_ID: variable(
    undefined,
    "the same on every gateway of one deployment: presence between its nodes uses exchange `sobranie.presence.<id>` and drops messages of any other deployment, so deployments sharing a RabbitMQ vhost never see each other's nodes (docs/operations.md \"Deployments sharing a vhost\"); backend presence events carry it as `data.deployment`; unset: exchange `sobranie.presence`",
    v.pipe(
      v.string(),
      v.regex(DEPLOYMENT_ID_PATTERN, (issue) => `must be 1 to 63 lowercase letters, digits or dashes, not starting with a dash (${DEPLOYMENT_ID_PATTERN.source}), got "${issue.input}"`),
    ),
  ),
  ROLE: variable("all", "gateway, worker, or all (both in one process)", oneOf(ROLES)),
  LOG_LEVEL: variable("info", `log level: ${LOG_LEVELS.join(", ")}`, oneOf(LOG_LEVELS)),
  RABBITMQ_URL: variable(
    undefined,
    "amqp(s)://user:pass@host:5672/vhost, or a comma-separated list of the cluster's nodes, tried in rotation (or one URL of a TCP load balancer in front of them); unset: embedded in-process broker",
    brokerUrls("amqp://user:pass@host:5672/vhost"),
  ),
  RABBITMQ_CONFIRM_TIMEOUT_MS: variable(
    "5000",
    "publisher confirms not received within this fail: client and HTTP publishes answer unavailable, the worker, outbox and presence events retry",
    durationMs(100),
  ),
  BROKER_LOSS_GRACE_MS: variable(
    "3000",
    "a gateway without its broker this long answers new connections 503 and sends its clients `reconnect` (spread over DRAIN_GRACE_MS) so they move to healthy nodes",
    durationMs(0),
  ),
  DATABASE_URL: variable(
    undefined,
    "postgres(ql)://user@host:5432/db; unset: embedded store",
    url(["postgres:", "postgresql:"], "postgres://user@host:5432/db"),
  ),
  JWT_SECRET: variable(
    undefined,
    "HS256 secret for client tokens (at least 32 characters); required with RABBITMQ_URL unless JWT_PUBLIC_KEY or JWT_JWKS_URL is set; on embedded defaults a random one is made and a demo token printed",
    v.pipe(v.string(), v.minLength(32, (issue) => `must be at least 32 characters, has ${issue.input.length}`)),
  ),
  JWT_PUBLIC_KEY: variable(undefined, "PEM public key for RS256/ES256 tokens (\\n escapes allowed)", publicKeyPem),
  JWT_JWKS_URL: variable(
    undefined,
    "JWKS URL for RS256/ES256 tokens (not together with JWT_PUBLIC_KEY)",
    url(["http:", "https:"], "https://auth.example.com/.well-known/jwks.json"),
  ),
  JWT_ISSUER: variable(undefined, "required `iss` claim, if set", v.string()),
  JWT_AUDIENCE: variable(undefined, "required `aud` claim, if set", v.string()),
  TOKEN_MAX_LIFETIME_MS: variable(
    "2592000000",
    "the longest a client token lives (exp - iat): how long a revocation without the token's exp, or one by issuedBefore, is kept (docs/protocol.md §11); at least your longest token lifetime",
    integer(60_000, 10 * 365 * 24 * 3_600_000),
  ),
  API_KEYS: variable(
    undefined,
    'keys for the backend HTTP API, each at least 16 characters: comma-separated, each with full access, or a JSON array `[{"key":"…","scopes":["publish:post","read"]}]` whose scopes are `publish` (every namespace), `publish:<namespace>`, `control`, `read` (presence and status) or `*` (docs/security.md "Scoped API keys"); unset: HTTP API disabled, except on embedded defaults where a demo key with full access is made and printed',
    apiKeys,
  ),
  API_RATE_PER_SEC: variable("1000", "HTTP API requests per second per API key, and per Pusher app on its REST API (token bucket rate)", positive),
  API_RATE_BURST: variable("2000", "token bucket burst per API key and per Pusher app", positive),
  HTTP_USER_RATE_PER_SEC: variable("10", "HTTP requests per second per user, after the token verified: inbox, status, SSE connects (token bucket rate; 429 beyond)", positive),
  HTTP_USER_BURST: variable("50", "token bucket burst per user for HTTP requests", positive),
  HTTP_SOURCE_RATE_PER_SEC: variable("100", "HTTP requests with a user token per second per client address, before the token is verified (token bucket rate; 429 beyond)", positive),
  HTTP_SOURCE_BURST: variable("200", "token bucket burst per client address", positive),
  API_KEY_FAILURES_PER_MIN: variable("30", "wrong API keys and badly signed Pusher REST and history requests per minute per client address before its API-key and Pusher REST and history requests are refused 429", positive),
  TRUSTED_PROXIES: variable(
    undefined,
    "comma-separated addresses or CIDR ranges of reverse proxies (nginx): from these peers the client address is taken from X-Forwarded-For; unset: the peer address is the client's",
    addressRanges,
  ),
  HEARTBEAT_MS: variable("25000", "client heartbeat interval", durationMs(1)),
  PRESENCE_TTL_MS: variable("60000", "silence after which presence ends and the socket closes (> HEARTBEAT_MS)", durationMs(1)),
  PRESENCE_MAX_LISTED: variable("1000", "presence lists members up to this many per channel; above it answers the count only (truncated: true)", positive),
  PRESENCE_FANOUT_PER_SEC: variable("50", "join/leave frames per channel per second sent at once; past it net changes are sent once a second (as one `members` frame when more users changed)", positive),
  PRESENCE_FANOUT_DELIVERIES_PER_SEC: variable("20000", "join/leave deliveries (frames × local subscribers) per channel per second sent at once; a room with more local subscribers gets fewer itemized frames (PRESENCE_FANOUT_PER_SEC × subscribers at most this), the rest as `members` frames", positive),
  MAX_FRAME_BYTES: variable("65536", "largest client frame", integer(1_024, 16 * 1024 * 1024)),
  RATE_CONNECTION_PER_SEC: variable("20", "frames per second per connection (token bucket rate)", positive),
  RATE_CONNECTION_BURST: variable("40", "token bucket burst per connection", positive),
  RATE_USER_PER_SEC: variable("50", "frames per second per user, all connections on this node", positive),
  RATE_USER_BURST: variable("100", "token bucket burst per user", positive),
  ABUSE_CLOSE_MS: variable("5000", "continuous time over the rate limit before close 4029", durationMs(1)),
  MAX_SUBSCRIPTIONS: variable("128", "subscriptions per connection", positive),
  MAX_CONNECTIONS_PER_USER: variable("16", "connections per user on this node (HTTP 429 beyond)", positive),
  MAX_CONNECTIONS: variable("100000", "connections on this node (HTTP 503 beyond)", positive),
  SEND_BUFFER_BYTES: variable("1048576", "per-socket send buffer before close 4013", integer(1_024)),
  BIND_LINGER_MS: variable("5000", "keep a channel's binding this long after its last local subscriber leaves", durationMs(0)),
  BIND_WHOLE_NAMESPACES: variable(
    undefined,
    "comma-separated namespaces bound once per node as `<ns>.#` instead of once per subscribed channel: no binding churn, but every event of the namespace reaches every node (docs/performance.md \"Connect storm\")",
    namespaceNames,
  ),
  NODE_QUEUE_MAX_LENGTH: variable("100000", "per-node queue max length (x-max-length)", positive),
  NODE_QUEUE_MESSAGE_TTL_MS: variable("60000", "per-node queue message TTL (x-message-ttl)", durationMs(0)),
  DRAIN_GRACE_MS: variable("10000", "on SIGTERM: time between reconnect frames and close 1012", durationMs(0)),
  SHUTDOWN_TIMEOUT_MS: variable("30000", "forced exit after this long shutting down (> DRAIN_GRACE_MS)", durationMs(1)),
  RECOVERY_MAX_EVENTS: variable("1000", "most missed events one subscribe with since replays (beyond: recovered false)", positive),
  RETENTION_MAX_AGE_MS: variable("604800000", "durable events older than this are removed (default 7 days)", positive),
  RETENTION_MAX_PER_CHANNEL: variable("10000", "at most this many newest durable events are kept per channel", positive),
  RETENTION: variable(
    undefined,
    'JSON per-namespace retention overrides: {"room":{"maxAgeMs":86400000,"maxPerChannel":500}}',
    retention,
  ),
  RETENTION_INTERVAL_MS: variable("60000", "how often the worker applies retention", durationMs(1_000)),
  PERSIST_MAX_BATCH: variable("200", "worker: most events stored in one transaction", integer(1, 10_000)),
  PERSIST_MAX_BATCH_WAIT_MS: variable("5", "worker: how long a batch waits to fill after its first event", durationMs(0)),
  OUTBOX_SWEEP_MS: variable(
    "5000",
    "worker with DATABASE_URL: read the PostgreSQL outbox this often even without a NOTIFY",
    durationMs(10),
  ),
  OUTBOX_BATCH: variable("2000", "worker: most outbox rows published and marked in one transaction", integer(1, 10_000)),
  OUTBOX_KEEP_PUBLISHED_MS: variable("86400000", "published outbox rows are deleted after this long (default 1 day)", durationMs(0)),
  NAMESPACES: variable(
    undefined,
    'JSON array of extra namespaces: [{"name":"typing","subscribe":"claim","publish":"broadcast","durable":false,"presence":false}]; subscribe is self, claim, any or token (docs/protocol.md §10); pusherSeq (durable only) puts seq into Pusher events\' data (docs/pusher.md "Recovery")',
    namespaces,
  ),
  PUSHER_APPS: variable(
    undefined,
    'JSON array of Pusher apps for the Pusher-protocol endpoint /app/{key} (docs/pusher.md): [{"id":"1","key":"app-key","secret":"at-least-16-chars","clientEvents":false,"maxConnections":1000,"signinTimeoutMs":30000,"webhooks":[{"url":"https://…","events":["member_added"]}]}]; unset: the endpoint is off',
    pusherApps,
  ),
  PUSHER_CHANNEL_PREFIXES: variable(
    undefined,
    'JSON object of Pusher channel-name prefixes for namespaces whose Pusher channels are not named after them (docs/pusher.md "Channel names"): {"App.Models.User":"user"} makes private-App.Models.User.42 the channel user:42',
    pusherChannelPrefixes,
  ),
  WEBHOOK_TIMEOUT_MS: variable("5000", "worker: bound on each Pusher webhook request, answer included; past it the events are retried", durationMs(100)),
  WEBHOOK_BATCH_WAIT_MS: variable("50", "worker: how long the first webhook events for a receiver wait for more to share their request", durationMs(0)),
  WEBHOOK_BATCH_MAX_EVENTS: variable("100", "worker: most events in one webhook request", integer(1, 1_000)),
  WEBHOOK_RETRY_INITIAL_MS: variable("1000", "worker: delay before a failed webhook's first retry; doubling (equal jitter) up to WEBHOOK_RETRY_MAX_DELAY_MS", durationMs(10)),
  WEBHOOK_RETRY_MAX_DELAY_MS: variable("60000", "worker: longest delay between two retries of a webhook", durationMs(10)),
  WEBHOOK_GIVE_UP_AFTER_MS: variable(
    "900000",
    "worker: webhook events still failing this long after their first attempt are dead-lettered to sobranie.dead (default 15 min)",
    durationMs(0),
  ),
} as const;

export type VariableName = keyof typeof VARIABLES;

type Entries = {
  [K in VariableName]: v.OptionalSchema<(typeof VARIABLES)[K]["schema"], (typeof VARIABLES)[K]["default"]>;
};

function entries(): Entries {
  const result: Record<string, v.OptionalSchema<v.GenericSchema<string, unknown>, string | undefined>> = {};
  for (const [name, spec] of Object.entries(VARIABLES)) result[name] = v.optional(spec.schema, spec.default);
  // Object.entries loses the per-key types; the loop builds exactly the mapped type above.
  return result as Entries;
}

const EnvFields = v.object(entries());
type EnvFields = v.InferOutput<typeof EnvFields>;

/**
 * A rule across variables, reported on `target` (the one an operator should
 * change). It is checked only when none of `variables` has a problem of its
 * own: valibot's partialCheck would also run on a value that failed a range
 * check, and report a second, misleading problem for it.
 */
function rule<const K extends VariableName>(
  variables: readonly K[],
  target: K,
  requirement: (env: Pick<EnvFields, K>) => boolean,
  message: (env: Pick<EnvFields, K>) => string,
) {
  return v.rawCheck<EnvFields>(({ dataset, addIssue }) => {
    const involved = (issue: v.BaseIssue<unknown>) => variables.some((name) => issue.path?.[0]?.key === name);
    if (dataset.issues?.some(involved)) return;
    // `dataset.typed` is false as soon as any variable (ROLE=nope) fails its
    // type, yet the object schema still holds every key, and the ones this
    // rule reads passed: safe to read them as typed.
    const input = dataset.value as EnvFields;
    if (requirement(input)) return;
    addIssue({
      message: message(input),
      path: [{ type: "object", origin: "value", input, key: target, value: input[target] }],
    });
  });
}

/**
 * The whole environment in one schema. Field issues carry the variable name
 * as their first path key; so do cross-variable rules. Every field and every
 * rule runs, so all problems are reported in one pass.
 */
function durableNames(extra: readonly NamespacePolicy[] | undefined): string[] {
  return [...BUILT_IN_NAMESPACES, ...(extra ?? [])].filter((policy) => policy.durable).map((policy) => policy.name);
}

/** A prefix must name a namespace that exists, and must not be another namespace's own name (it would hide that namespace's channels). */
function prefixProblems(prefixes: Readonly<Record<string, string>> | undefined, extra: readonly NamespacePolicy[] | undefined): string[] {
  const entries = Object.entries(prefixes ?? {});
  const unknown = unknownNames(entries.map(([, namespace]) => namespace), extra);
  const known = new Set([...BUILT_IN_NAMESPACES, ...(extra ?? [])].map((policy) => policy.name));
  return [
    ...unknown.map((name) => `names namespace "${name}", which does not exist`),
    ...entries.filter(([prefix, namespace]) => prefix !== namespace && known.has(prefix)).map(([prefix]) => `prefix "${prefix}" is the name of another namespace`),
  ];
}

/** The namespaces that `publish:<namespace>` scopes of API_KEYS name and that do not exist (a typo would refuse every publish). */
function unknownPublishScopes(keys: readonly { readonly scopes: readonly string[] }[] | undefined, extra: readonly NamespacePolicy[] | undefined): string[] {
  const named = (keys ?? []).flatMap((key) => key.scopes.flatMap((scope) => namespaceOfPublishScope(scope) ?? []));
  return [...new Set(unknownNames(named, extra))];
}

function unknownNames(names: readonly string[] | undefined, extra: readonly NamespacePolicy[] | undefined): string[] {
  const known = new Set([...BUILT_IN_NAMESPACES, ...(extra ?? [])].map((policy) => policy.name));
  return (names ?? []).filter((name) => !known.has(name));
}

export const EnvSchema = v.pipe(
  EnvFields,
  rule(
    ["RABBITMQ_URL", "JWT_SECRET", "JWT_PUBLIC_KEY", "JWT_JWKS_URL"],
    "JWT_SECRET",
    (env) =>
      env.RABBITMQ_URL === undefined ||
      env.JWT_SECRET !== undefined ||
      env.JWT_PUBLIC_KEY !== undefined ||
      env.JWT_JWKS_URL !== undefined,
    () => "is required when RABBITMQ_URL is set, unless JWT_PUBLIC_KEY or JWT_JWKS_URL is set",
  ),
  rule(
    ["JWT_PUBLIC_KEY", "JWT_JWKS_URL"],
    "JWT_JWKS_URL",
    (env) => env.JWT_PUBLIC_KEY === undefined || env.JWT_JWKS_URL === undefined,
    () => "cannot be used together with JWT_PUBLIC_KEY: choose one source of public keys",
  ),
  rule(
    ["HEARTBEAT_MS", "PRESENCE_TTL_MS"],
    "PRESENCE_TTL_MS",
    (env) => env.PRESENCE_TTL_MS > env.HEARTBEAT_MS,
    (env) => `must be greater than HEARTBEAT_MS (${env.HEARTBEAT_MS})`,
  ),
  // A forced exit inside the drain grace would cut every client off before
  // the close 1012 that the drain exists to send.
  rule(
    ["ROLE", "RABBITMQ_URL"],
    "ROLE",
    (env) => env.ROLE === "all" || env.RABBITMQ_URL !== undefined,
    (env) => `${env.ROLE} needs RABBITMQ_URL: the embedded broker only connects the roles inside one process (ROLE=all)`,
  ),
  rule(
    ["RETENTION", "NAMESPACES"],
    "RETENTION",
    (env) => Object.keys(env.RETENTION ?? {}).every((name) => durableNames(env.NAMESPACES).includes(name)),
    (env) => `names namespaces that are not durable: ${Object.keys(env.RETENTION ?? {}).filter((name) => !durableNames(env.NAMESPACES).includes(name)).join(", ")}`,
  ),
  rule(
    ["BIND_WHOLE_NAMESPACES", "NAMESPACES"],
    "BIND_WHOLE_NAMESPACES",
    (env) => unknownNames(env.BIND_WHOLE_NAMESPACES, env.NAMESPACES).length === 0,
    (env) => `names namespaces that do not exist: ${unknownNames(env.BIND_WHOLE_NAMESPACES, env.NAMESPACES).join(", ")}`,
  ),
  rule(
    ["PUSHER_CHANNEL_PREFIXES", "NAMESPACES"],
    "PUSHER_CHANNEL_PREFIXES",
    (env) => prefixProblems(env.PUSHER_CHANNEL_PREFIXES, env.NAMESPACES).length === 0,
    (env) => prefixProblems(env.PUSHER_CHANNEL_PREFIXES, env.NAMESPACES).join("; "),
  ),
  rule(
    ["API_KEYS", "NAMESPACES"],
    "API_KEYS",
    (env) => unknownPublishScopes(env.API_KEYS, env.NAMESPACES).length === 0,
    (env) => `publish scopes name namespaces that do not exist: ${unknownPublishScopes(env.API_KEYS, env.NAMESPACES).join(", ")}`,
  ),
  rule(
    ["WEBHOOK_RETRY_INITIAL_MS", "WEBHOOK_RETRY_MAX_DELAY_MS"],
    "WEBHOOK_RETRY_MAX_DELAY_MS",
    (env) => env.WEBHOOK_RETRY_MAX_DELAY_MS >= env.WEBHOOK_RETRY_INITIAL_MS,
    (env) => `must be at least WEBHOOK_RETRY_INITIAL_MS (${env.WEBHOOK_RETRY_INITIAL_MS})`,
  ),
  rule(
    ["DRAIN_GRACE_MS", "SHUTDOWN_TIMEOUT_MS"],
    "SHUTDOWN_TIMEOUT_MS",
    (env) => env.SHUTDOWN_TIMEOUT_MS > env.DRAIN_GRACE_MS,
    (env) => `must be greater than DRAIN_GRACE_MS (${env.DRAIN_GRACE_MS})`,
  ),
);

export type Env = v.InferOutput<typeof EnvSchema>;
