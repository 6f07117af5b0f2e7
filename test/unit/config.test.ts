import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ConfigError, defaultNodeId, ENV_VARS, formatEnvHelp, formatEnvMarkdown, loadConfig } from "../../src/config/index.js";
import { BUILT_IN_NAMESPACES } from "../../src/core/namespaces.js";

const SECRET = "s".repeat(32);
const RABBIT = "amqp://guest:guest@localhost:5672/";

function problemsOf(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected loadConfig to throw ConfigError");
}

function variablesOf(env: Record<string, string | undefined>): string[] {
  return [...new Set(problemsOf(env).problems.map((problem) => problem.variable))];
}

describe("loadConfig defaults", () => {
  it("runs on embedded defaults with an empty environment", () => {
    const config = loadConfig({});
    expect(config.http).toEqual({ port: 8080, host: "0.0.0.0" });
    expect(config.role).toBe("all");
    expect(config.logLevel).toBe("info");
    expect(config.rabbitmqUrls).toEqual([]);
    expect(config.databaseUrl).toBeUndefined();
    expect(config.apiKeys).toEqual([{ key: expect.any(String), scopes: ["*"] }]);
    expect(config.apiKeysGenerated).toBe(true);
    expect(loadConfig({ RABBITMQ_URL: "amqp://127.0.0.1", JWT_SECRET: "s".repeat(32) }).apiKeys).toEqual([]);
    expect(config.heartbeatMs).toBe(25_000);
    expect(config.presenceTtlMs).toBe(60_000);
    expect(config.limits).toEqual({
      maxFrameBytes: 65_536,
      rateConnectionPerSec: 20,
      rateConnectionBurst: 40,
      rateUserPerSec: 50,
      rateUserBurst: 100,
      abuseCloseMs: 5_000,
      maxSubscriptions: 128,
      maxConnectionsPerUser: 16,
      maxConnections: 100_000,
      sendBufferBytes: 1_048_576,
    });
    expect(config.nodeQueue).toEqual({ maxLength: 100_000, messageTtlMs: 60_000 });
    expect(config.confirmTimeoutMs).toBe(5_000);
    expect(config.brokerLossGraceMs).toBe(3_000);
    expect(config.bindLingerMs).toBe(5_000);
    expect(config.bindWholeNamespaces).toEqual([]);
    expect(config.drainGraceMs).toBe(10_000);
    expect(config.shutdownTimeoutMs).toBe(30_000);
    expect(config.namespaces).toEqual(BUILT_IN_NAMESPACES);
  });

  it("generates a random JWT secret on embedded defaults when no JWT source is set", () => {
    const first = loadConfig({});
    const second = loadConfig({});
    expect(first.jwt.generated).toBe(true);
    expect(first.jwt.secret?.length).toBeGreaterThanOrEqual(32);
    expect(first.jwt.secret).not.toBe(second.jwt.secret);
  });

  it("keeps a configured secret and does not mark it generated", () => {
    const config = loadConfig({ JWT_SECRET: SECRET, JWT_ISSUER: "auth", JWT_AUDIENCE: "rt" });
    expect(config.jwt).toMatchObject({ secret: SECRET, generated: false, issuer: "auth", audience: "rt" });
  });

  it("treats empty and blank values as unset", () => {
    const config = loadConfig({ PORT: "", RABBITMQ_URL: "", JWT_SECRET: "  ", NAMESPACES: "" });
    expect(config.http.port).toBe(8080);
    expect(config.rabbitmqUrls).toEqual([]);
    expect(config.jwt.generated).toBe(true);
  });

  it("ignores variables it does not own", () => {
    expect(() => loadConfig({ PATH: "/usr/bin", FOO: "12abc" })).not.toThrow();
  });

  it("makes a node id from the sanitized host name plus a random suffix", () => {
    expect(loadConfig({}).nodeId).toMatch(/^[A-Za-z0-9_-]{1,57}-[a-z0-9]{6}$/);
    expect(defaultNodeId("web.prod.local")).toMatch(/^web-prod-local-[a-z0-9]{6}$/);
    expect(defaultNodeId("...")).toMatch(/^node-[a-z0-9]{6}$/);
    expect(defaultNodeId("h".repeat(200))).toHaveLength(64);
    expect(defaultNodeId("a")).not.toBe(defaultNodeId("a"));
  });
});

describe("loadConfig values", () => {
  it("coerces every integer and keeps explicit values", () => {
    const config = loadConfig({ PORT: "0", HEARTBEAT_MS: "1000", PRESENCE_TTL_MS: "3000", MAX_CONNECTIONS: "7", NODE_ID: "node_A-1" });
    expect(config.http.port).toBe(0);
    expect(config.heartbeatMs).toBe(1_000);
    expect(config.presenceTtlMs).toBe(3_000);
    expect(config.limits.maxConnections).toBe(7);
    expect(config.nodeId).toBe("node_A-1");
  });

  it.each(["12abc", "-1", "1.5", "1e3", " 80", "0x10", "65536"])("rejects PORT=%j", (port) => {
    const error = problemsOf({ PORT: port });
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]?.variable).toBe("PORT");
    expect(error.message).toContain("PORT: must be a whole number from 0 to 65535");
  });

  it("rejects zero where a positive number is needed and durations beyond timer range", () => {
    expect(variablesOf({ MAX_SUBSCRIPTIONS: "0", HEARTBEAT_MS: "0", SHUTDOWN_TIMEOUT_MS: "2147483648" })).toEqual([
      "HEARTBEAT_MS",
      "MAX_SUBSCRIPTIONS",
      "SHUTDOWN_TIMEOUT_MS",
    ]);
  });

  it("accepts only known roles and log levels", () => {
    const rabbit = { RABBITMQ_URL: "amqp://127.0.0.1", JWT_SECRET: "s".repeat(32) };
    expect(loadConfig({ ...rabbit, ROLE: "worker", LOG_LEVEL: "silent" })).toMatchObject({ role: "worker", logLevel: "silent" });
    const error = problemsOf({ ROLE: "both", LOG_LEVEL: "verbose" });
    expect(error.message).toContain('ROLE: must be one of gateway, worker, all, got "both"');
    expect(error.message).toContain("LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent");
  });

  it("runs the gateway and worker roles apart only with RABBITMQ_URL", () => {
    expect(variablesOf({ ROLE: "gateway" })).toEqual(["ROLE"]);
    expect(variablesOf({ ROLE: "worker" })).toEqual(["ROLE"]);
    expect(loadConfig({ ROLE: "all" }).role).toBe("all");
  });

  it("reads PUSHER_APPS with defaults, and names each bad entry without echoing a secret", () => {
    expect(loadConfig({}).pusherApps).toEqual([]);
    const secret = "s3cret-s3cret-s3cret";
    const config = loadConfig({
      PUSHER_APPS: JSON.stringify([
        { id: "1", key: "app-one", secret },
        { id: "2", key: "app-two", secret, enabled: false, clientEvents: true, maxConnections: 10, signinTimeoutMs: 30_000, webhooks: [{ url: "https://hooks.example/p", events: ["member_added"] }] },
      ]),
    });
    expect(config.pusherApps).toEqual([
      { id: "1", key: "app-one", secret, enabled: true, clientEvents: false, maxConnections: undefined, signinTimeoutMs: undefined, webhooks: [] },
      { id: "2", key: "app-two", secret, enabled: false, clientEvents: true, maxConnections: 10, signinTimeoutMs: 30_000, webhooks: [{ url: "https://hooks.example/p", events: ["member_added"] }] },
    ]);
    const allEvents = loadConfig({ PUSHER_APPS: JSON.stringify([{ id: "1", key: "k", secret, webhooks: [{ url: "http://h.example" }] }]) });
    expect(allEvents.pusherApps[0]?.webhooks[0]?.events).toEqual(["channel_occupied", "channel_vacated", "member_added", "member_removed", "client_event", "cache_miss"]);

    const bad = [
      "[nope",
      JSON.stringify({ id: "1" }),
      JSON.stringify([{ id: "1", key: "k", secret: "short-Xy" }]),
      JSON.stringify([{ id: "a b", key: "k", secret }]),
      JSON.stringify([{ id: "1", key: "k/x", secret }]),
      JSON.stringify([{ id: "1", key: "k", secret, extra: 1 }]),
      JSON.stringify([{ id: "1", key: "k", secret, maxConnections: 0 }]),
      JSON.stringify([{ id: "1", key: "k", secret, signinTimeoutMs: 999 }]),
      JSON.stringify([{ id: "1", key: "k", secret, signinTimeoutMs: 600_001 }]),
      JSON.stringify([{ id: "1", key: "k", secret, signinTimeoutMs: "30s" }]),
      JSON.stringify([{ id: "1", key: "k", secret, webhooks: [{ url: "ftp://h.example" }] }]),
      JSON.stringify([{ id: "1", key: "k", secret, webhooks: [{ url: "https://h.example", events: ["nope"] }] }]),
      JSON.stringify([{ id: "1", key: "k", secret, webhooks: [{ url: "https://h.example", events: [] }] }]),
      JSON.stringify([{ id: "1", key: "k", secret }, { id: "1", key: "k2", secret }]),
      JSON.stringify([{ id: "1", key: "k", secret }, { id: "2", key: "k", secret }]),
    ];
    for (const value of bad) {
      const error = problemsOf({ PUSHER_APPS: value });
      expect(error.problems.map((problem) => problem.variable), value).toEqual(["PUSHER_APPS"]);
      expect(error.message).not.toContain("short-Xy");
      expect(error.message).not.toContain(secret);
    }
  });

  it("reads PUSHER_CHANNEL_PREFIXES and refuses prefixes that would be ambiguous", () => {
    expect(loadConfig({}).pusherChannelPrefixes).toEqual({});
    expect(loadConfig({ PUSHER_CHANNEL_PREFIXES: '{"App.Models.User":"user"}' }).pusherChannelPrefixes).toEqual({ "App.Models.User": "user" });
    for (const value of ["{nope", "[]", '{"A":7}', '{"A":"nope"}', '{"private-x":"user"}', '{"cache-x":"user"}', '{"a b":"user"}', '{"A":"user","B":"user"}', '{"room":"user"}', '{"A..B":"user"}']) {
      expect(variablesOf({ PUSHER_CHANNEL_PREFIXES: value }), value).toEqual(["PUSHER_CHANNEL_PREFIXES"]);
    }
    expect(loadConfig({ PUSHER_CHANNEL_PREFIXES: '{"Orders":"orders"}', NAMESPACES: '[{"name":"orders"}]' }).pusherChannelPrefixes).toEqual({ Orders: "orders" });
  });

  it("builds one retention policy per durable namespace, with per-namespace overrides", () => {
    const config = loadConfig({
      RETENTION_MAX_AGE_MS: "1000",
      RETENTION_MAX_PER_CHANNEL: "10",
      RETENTION: JSON.stringify({ room: { maxPerChannel: 5 } }),
      NAMESPACES: JSON.stringify([{ name: "audit", durable: true }]),
    });
    expect(config.durable.retention).toEqual([
      { namespace: "user", maxAgeMs: 1000, maxPerChannel: 10 },
      { namespace: "room", maxAgeMs: 1000, maxPerChannel: 5 },
      { namespace: "audit", maxAgeMs: 1000, maxPerChannel: 10 },
    ]);
    expect(variablesOf({ RETENTION: JSON.stringify({ post: { maxAgeMs: 1 } }) })).toEqual(["RETENTION"]);
    expect(variablesOf({ RETENTION: "{nope" })).toEqual(["RETENTION"]);
    expect(variablesOf({ RETENTION: JSON.stringify({ room: { maxAgeMs: -1 } }) })).toEqual(["RETENTION"]);
  });

  it("splits BIND_WHOLE_NAMESPACES and accepts only namespaces that exist", () => {
    expect(loadConfig({ BIND_WHOLE_NAMESPACES: " user, room,,user " }).bindWholeNamespaces).toEqual(["user", "room"]);
    expect(loadConfig({ BIND_WHOLE_NAMESPACES: "audit", NAMESPACES: JSON.stringify([{ name: "audit" }]) }).bindWholeNamespaces).toEqual(["audit"]);
    expect(problemsOf({ BIND_WHOLE_NAMESPACES: "user,nope" }).problems).toEqual([{ variable: "BIND_WHOLE_NAMESPACES", message: "names namespaces that do not exist: nope" }]);
    expect(variablesOf({ BIND_WHOLE_NAMESPACES: "Bad.Name" })).toEqual(["BIND_WHOLE_NAMESPACES"]);
  });

  it("validates NODE_ID against its pattern", () => {
    expect(variablesOf({ NODE_ID: "has space" })).toEqual(["NODE_ID"]);
    expect(variablesOf({ NODE_ID: "x".repeat(65) })).toEqual(["NODE_ID"]);
  });

  it("leaves DEPLOYMENT_ID unset by default and accepts one exchange-name word of lowercase letters, digits and dashes", () => {
    expect(loadConfig({}).deploymentId).toBeUndefined();
    expect(loadConfig({ DEPLOYMENT_ID: "eu-west-2" }).deploymentId).toBe("eu-west-2");
    expect(loadConfig({ DEPLOYMENT_ID: "x".repeat(63) }).deploymentId).toBe("x".repeat(63));
    for (const bad of ["Prod", "eu.west", "-blue", "a_b", "a#", "x".repeat(64)]) {
      expect(problemsOf({ DEPLOYMENT_ID: bad }).problems).toEqual([
        {
          variable: "DEPLOYMENT_ID",
          message: `must be 1 to 63 lowercase letters, digits or dashes, not starting with a dash (^[a-z0-9][a-z0-9-]{0,62}$), got "${bad}"`,
        },
      ]);
    }
  });

  it("accepts amqp(s) and postgres(ql) URLs only, without echoing credentials", () => {
    expect(loadConfig({ RABBITMQ_URL: "amqps://u:p@mq:5671/v", JWT_SECRET: SECRET }).rabbitmqUrls).toEqual(["amqps://u:p@mq:5671/v"]);
    expect(loadConfig({ DATABASE_URL: "postgresql://u@db:5432/x" }).databaseUrl).toBe("postgresql://u@db:5432/x");
    const error = problemsOf({ RABBITMQ_URL: "http://user:hunter2@mq/", DATABASE_URL: "mysql://root:hunter2@db/x" });
    expect(error.problems.map((problem) => problem.variable)).toEqual(["RABBITMQ_URL", "DATABASE_URL"]);
    expect(error.message).not.toContain("hunter2");
  });

  it("takes a comma-separated list of broker URLs, keeps commas inside passwords, and names a bad entry by position only", () => {
    const urls = loadConfig({ RABBITMQ_URL: " amqp://u:p@mq1:5672/v , amqp://u:p,w@mq2:5672/v,amqps://mq3/v,", JWT_SECRET: SECRET }).rabbitmqUrls;
    expect(urls).toEqual(["amqp://u:p@mq1:5672/v", "amqp://u:p,w@mq2:5672/v", "amqps://mq3/v"]);
    const error = problemsOf({ RABBITMQ_URL: "amqp://u:p@mq1/v, amqp://u:hunter2@/v, amqp://mq3/v", JWT_SECRET: SECRET });
    expect(error.problems).toEqual([{ variable: "RABBITMQ_URL", message: expect.stringMatching(/^entry #2 of 3: must be a amqp:\/\/ or amqps:\/\/ URL with a host/) }]);
    expect(error.message).not.toContain("hunter2");
    expect(variablesOf({ RABBITMQ_URL: ",", JWT_SECRET: SECRET })).toEqual(["RABBITMQ_URL"]);
  });

  it("reads the HTTP rate limits and TRUSTED_PROXIES as addresses and CIDR ranges", () => {
    const config = loadConfig({ HTTP_USER_RATE_PER_SEC: "5", HTTP_SOURCE_BURST: "7", API_KEY_FAILURES_PER_MIN: "3", TRUSTED_PROXIES: " 10.0.0.0/8, 127.0.0.1 ,fd00::/8," });
    expect(config.httpLimits).toEqual({
      user: { perSec: 5, burst: 50 },
      source: { perSec: 100, burst: 7 },
      apiKeyFailuresPerMin: 3,
      trustedProxies: [
        { address: "10.0.0.0", prefix: 8, family: "ipv4" },
        { address: "127.0.0.1", prefix: 32, family: "ipv4" },
        { address: "fd00::", prefix: 8, family: "ipv6" },
      ],
    });
    expect(loadConfig({}).httpLimits.trustedProxies).toEqual([]);
    expect(problemsOf({ TRUSTED_PROXIES: "10.0.0.0/33,nginx,::1/129", HTTP_USER_BURST: "0" }).problems).toEqual([
      { variable: "HTTP_USER_BURST", message: expect.stringContaining("must be a whole number at least 1") },
      { variable: "TRUSTED_PROXIES", message: '"10.0.0.0/33" is not an IP address or a CIDR range like 10.0.0.0/8' },
      { variable: "TRUSTED_PROXIES", message: '"nginx" is not an IP address or a CIDR range like 10.0.0.0/8' },
      { variable: "TRUSTED_PROXIES", message: '"::1/129" is not an IP address or a CIDR range like 10.0.0.0/8' },
    ]);
  });

  it("splits API_KEYS, trims them, skips empty items and rejects short keys without echoing them", () => {
    const long = "k".repeat(16);
    expect(loadConfig({ API_KEYS: ` ${long} ,${long}2,` }).apiKeys).toEqual([
      { key: long, scopes: ["*"] },
      { key: `${long}2`, scopes: ["*"] },
    ]);
    const error = problemsOf({ API_KEYS: `${long},tooshort` });
    expect(error.message).toContain("API_KEYS: key #2 has 8 characters; each key needs at least 16");
    expect(error.message).not.toContain("tooshort");
  });

  it("reads API_KEYS as a JSON array of keys with their scopes", () => {
    const entries = [
      { key: "publisher-key-0123456789", scopes: ["publish:post", "publish:room"] },
      { key: "operator-key-0123456789", scopes: ["control", "read"] },
      { key: "everything-key-0123456789", scopes: ["*"] },
      { key: "any-namespace-key-0123", scopes: ["publish"] },
    ];
    expect(loadConfig({ API_KEYS: JSON.stringify(entries) }).apiKeys).toEqual(entries);
    expect(loadConfig({ API_KEYS: `  ${JSON.stringify(entries.slice(0, 1))}` }).apiKeys).toEqual(entries.slice(0, 1));
    // A publish scope names a namespace that exists: a typo would refuse every publish.
    const typo = JSON.stringify([{ key: "publisher-key-0123456789", scopes: ["publish:rom", "publish:post"] }]);
    expect(problemsOf({ API_KEYS: typo }).message).toContain("publish scopes name namespaces that do not exist: rom");
    expect(loadConfig({ API_KEYS: JSON.stringify([{ key: "publisher-key-0123456789", scopes: ["publish:orders"] }]), NAMESPACES: '[{"name":"orders"}]' }).apiKeys).toHaveLength(1);
  });

  it("refuses each bad scoped API_KEYS entry by its position, never echoing a key", () => {
    const key = "secret-key-0123456789";
    const other = "secret-key-9876543210";
    const cases: Array<[unknown, string]> = [
      [[{ key, scopes: ["publish:post", "nope"] }], '[0].scopes[1]: scope "nope" is not one of *, publish, publish:<namespace>, control or read'],
      [[{ key, scopes: ["read"] }, { key: other, scopes: ["publish:Room"] }], '[1].scopes[0]: scope "publish:Room" is not one of'],
      [[{ key, scopes: ["publish:"] }], '[0].scopes[0]: scope "publish:" is not one of'],
      [[{ key, scopes: [7] }], "[0].scopes[0]: each scope must be a string"],
      [[{ key, scopes: [] }], "[0].scopes: scopes must name at least one scope"],
      [[{ key, scopes: "read" }], "[0].scopes: scopes must be an array of scopes"],
      [[{ key }], '[0].scopes: each entry must be {"key": "<at least 16 characters>", "scopes": [...]} and nothing else'],
      [[{ key, scopes: ["read"], note: "x" }], "[0].note: each entry must be"],
      [[{ key: "short-Xy", scopes: ["read"] }], "[0].key: key has 8 characters; each key needs at least 16"],
      [[{ key: `${key} x`, scopes: ["read"] }], "[0].key: key must not contain blanks"],
      [[{ key: 12345678901234567890, scopes: ["read"] }], "[0].key: key must be a string"],
      [[{ key, scopes: ["read"] }, { key: other, scopes: ["control"] }, { key, scopes: ["*"] }], "[2].key: the same key as [0].key; each key appears once"],
      [[], "must hold at least one key (unset API_KEYS to disable the HTTP API)"],
      [{ key, scopes: ["read"] }, "is a JSON object: give keys comma-separated, or a JSON array"],
      [[key], "[0]: each entry must be"],
    ];
    for (const [value, message] of cases) {
      const text = typeof value === "string" ? value : JSON.stringify(value);
      const error = problemsOf({ API_KEYS: text });
      expect(error.problems.map((problem) => problem.variable), text).toEqual(["API_KEYS"]);
      expect(error.message, text).toContain(`API_KEYS: ${message}`);
      for (const secret of [key, other, "short-Xy"]) expect(error.message, text).not.toContain(secret);
    }
    expect(problemsOf({ API_KEYS: `[{"key":"${key}"` }).message).toContain("API_KEYS: starts with [ but is not valid JSON");
  });
});

describe("loadConfig JWT rules", () => {
  const pem = (type: "rsa" | "ec") =>
    (type === "rsa"
      ? generateKeyPairSync("rsa", { modulusLength: 2048 })
      : generateKeyPairSync("ec", { namedCurve: "P-256" })
    ).publicKey
      .export({ type: "spki", format: "pem" })
      .toString();

  it("requires a JWT source when RABBITMQ_URL is set", () => {
    const error = problemsOf({ RABBITMQ_URL: RABBIT });
    expect(error.problems).toEqual([
      { variable: "JWT_SECRET", message: "is required when RABBITMQ_URL is set, unless JWT_PUBLIC_KEY or JWT_JWKS_URL is set" },
    ]);
    expect(loadConfig({ RABBITMQ_URL: RABBIT, JWT_JWKS_URL: "https://auth.example.com/jwks" }).jwt).toMatchObject({
      secret: undefined,
      generated: false,
    });
  });

  it("rejects a secret shorter than 32 characters without echoing it", () => {
    const error = problemsOf({ JWT_SECRET: "short-secret-value" });
    expect(error.message).toBe("invalid configuration (1 variable):\n  JWT_SECRET: must be at least 32 characters, has 18");
  });

  it("accepts RSA and P-256 PEM keys, with \\n escapes as written in env files", () => {
    const rsa = pem("rsa");
    expect(loadConfig({ RABBITMQ_URL: RABBIT, JWT_PUBLIC_KEY: rsa }).jwt.publicKeyPem).toBe(rsa.trim());
    const ec = pem("ec");
    expect(loadConfig({ JWT_PUBLIC_KEY: ec.trim().replaceAll("\n", "\\n") }).jwt.publicKeyPem).toBe(ec.trim());
  });

  it("rejects a PEM that is not a public key, or does not parse", () => {
    expect(variablesOf({ JWT_PUBLIC_KEY: "not a key" })).toEqual(["JWT_PUBLIC_KEY"]);
    const broken = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----";
    expect(problemsOf({ JWT_PUBLIC_KEY: broken }).message).toContain("must be an RSA or EC P-256 public key");
  });

  it("rejects JWT_PUBLIC_KEY together with JWT_JWKS_URL, and a non-http JWKS URL", () => {
    expect(variablesOf({ JWT_PUBLIC_KEY: pem("ec"), JWT_JWKS_URL: "https://a.example/jwks" })).toEqual(["JWT_JWKS_URL"]);
    expect(variablesOf({ JWT_JWKS_URL: "ftp://a.example/jwks" })).toEqual(["JWT_JWKS_URL"]);
  });
});

describe("loadConfig cross-variable rules", () => {
  it("needs PRESENCE_TTL_MS greater than HEARTBEAT_MS", () => {
    const error = problemsOf({ HEARTBEAT_MS: "30000", PRESENCE_TTL_MS: "30000" });
    expect(error.problems).toEqual([{ variable: "PRESENCE_TTL_MS", message: "must be greater than HEARTBEAT_MS (30000)" }]);
    expect(variablesOf({ HEARTBEAT_MS: "70000" })).toEqual(["PRESENCE_TTL_MS"]);
  });

  it("skips a rule whose variables already have a problem, so each is reported once", () => {
    expect(variablesOf({ HEARTBEAT_MS: "99999999999" })).toEqual(["HEARTBEAT_MS"]);
    expect(variablesOf({ RABBITMQ_URL: "amqp://", JWT_SECRET: "short" })).toEqual(["RABBITMQ_URL", "JWT_SECRET"]);
    expect(problemsOf({ JWT_SECRET: "short" }).problems).toHaveLength(1);
  });

  it("still checks rules when an unrelated variable fails its type", () => {
    expect(variablesOf({ ROLE: "nope", RABBITMQ_URL: RABBIT })).toEqual(["ROLE", "JWT_SECRET"]);
  });

  it("needs SHUTDOWN_TIMEOUT_MS greater than DRAIN_GRACE_MS", () => {
    expect(variablesOf({ DRAIN_GRACE_MS: "40000" })).toEqual(["SHUTDOWN_TIMEOUT_MS"]);
  });

  it("needs WEBHOOK_RETRY_MAX_DELAY_MS at least WEBHOOK_RETRY_INITIAL_MS", () => {
    expect(problemsOf({ WEBHOOK_RETRY_INITIAL_MS: "90000" }).problems).toEqual([
      { variable: "WEBHOOK_RETRY_MAX_DELAY_MS", message: "must be at least WEBHOOK_RETRY_INITIAL_MS (90000)" },
    ]);
    expect(loadConfig({ WEBHOOK_RETRY_INITIAL_MS: "500", WEBHOOK_RETRY_MAX_DELAY_MS: "500" }).webhooks).toMatchObject({ retryInitialMs: 500, retryMaxDelayMs: 500 });
  });
});

describe("loadConfig webhooks", () => {
  it("has defaults that retry for minutes: 1 s doubling to 60 s, given up after 15 min, 5 s a request, batches of 100 within 50 ms", () => {
    expect(loadConfig({}).webhooks).toEqual({ timeoutMs: 5_000, batchWaitMs: 50, batchMaxEvents: 100, retryInitialMs: 1_000, retryMaxDelayMs: 60_000, giveUpAfterMs: 900_000 });
  });

  it("refuses values out of range, naming the variable", () => {
    expect(variablesOf({ WEBHOOK_TIMEOUT_MS: "10", WEBHOOK_BATCH_MAX_EVENTS: "0", WEBHOOK_RETRY_INITIAL_MS: "x" })).toEqual([
      "WEBHOOK_TIMEOUT_MS",
      "WEBHOOK_BATCH_MAX_EVENTS",
      "WEBHOOK_RETRY_INITIAL_MS",
    ]);
  });
});

describe("loadConfig NAMESPACES", () => {
  it("adds extra namespaces after the built-ins, with defaults filled in", () => {
    const config = loadConfig({
      NAMESPACES: JSON.stringify([{ name: "typing", subscribe: "claim", publish: "broadcast" }, { name: "feed-2", presence: true }, { name: "vip", subscribe: "token" }]),
    });
    expect(config.namespaces.slice(0, BUILT_IN_NAMESPACES.length)).toEqual(BUILT_IN_NAMESPACES);
    expect(config.namespaces.slice(BUILT_IN_NAMESPACES.length)).toEqual([
      { name: "typing", subscribe: "claim", publish: "broadcast", durable: false, presence: false, pusherSeq: false },
      { name: "feed-2", subscribe: "claim", publish: "none", durable: false, presence: true, pusherSeq: false },
      { name: "vip", subscribe: "token", publish: "none", durable: false, presence: false, pusherSeq: false },
    ]);
  });

  it("rejects invalid JSON and non-arrays", () => {
    expect(problemsOf({ NAMESPACES: "[{" }).message).toContain("NAMESPACES: must be a JSON array of namespace policies, and is not valid JSON");
    expect(variablesOf({ NAMESPACES: '{"name":"x"}' })).toEqual(["NAMESPACES"]);
  });

  it("reports every bad entry with its position", () => {
    const error = problemsOf({
      NAMESPACES: JSON.stringify([
        { name: "Bad.Name" },
        { name: "client" },
        { name: "room" },
        { name: "chat", publish: "everyone", durabel: true, subscribe: "jwt" },
        { name: "chat" },
        { name: "chat" },
      ]),
    });
    const messages = error.problems.map((problem) => problem.message);
    expect(error.problems.every((problem) => problem.variable === "NAMESPACES")).toBe(true);
    expect(messages).toContain('[0].name: name "Bad.Name" must match ^[a-z][a-z0-9_-]{0,31}$');
    expect(messages).toContain('[1].name: name "client" is reserved');
    expect(messages).toContain('[2].name: name "room" is a built-in namespace');
    expect(messages).toContain('[3].publish: publish must be "none", "backend" or "broadcast"');
    expect(messages).toContain('[3].subscribe: subscribe must be "self", "claim", "any" or "token"');
    expect(messages.some((message) => message.startsWith("[3].durabel"))).toBe(true);
  });

  it("takes pusherSeq on durable namespaces only", () => {
    const config = loadConfig({ NAMESPACES: JSON.stringify([{ name: "orders", durable: true, pusherSeq: true }]) });
    expect(config.namespaces.at(-1)).toEqual({ name: "orders", subscribe: "claim", publish: "none", durable: true, presence: false, pusherSeq: true });
    expect(problemsOf({ NAMESPACES: JSON.stringify([{ name: "ticks", pusherSeq: true }]) }).problems).toEqual([
      { variable: "NAMESPACES", message: 'namespace "ticks": pusherSeq needs durable: true (only stored events have a seq)' },
    ]);
    expect(problemsOf({ NAMESPACES: JSON.stringify([{ name: "ticks", durable: true, pusherSeq: "yes" }]) }).problems).toEqual([
      { variable: "NAMESPACES", message: "[0].pusherSeq: pusherSeq must be true or false" },
    ]);
  });

  it("rejects duplicate names among valid entries", () => {
    const error = problemsOf({ NAMESPACES: JSON.stringify([{ name: "chat" }, { name: "chat" }]) });
    expect(error.problems).toEqual([{ variable: "NAMESPACES", message: 'name "chat" appears more than once' }]);
  });
});

describe("ConfigError", () => {
  it("names every bad variable, one line each, in one message", () => {
    const error = problemsOf({
      PORT: "12abc",
      RABBITMQ_URL: RABBIT,
      API_KEYS: "short",
      HEARTBEAT_MS: "90000",
      ROLE: "nope",
      NAMESPACES: "[{",
    });
    expect(error.name).toBe("ConfigError");
    expect(error).toBeInstanceOf(Error);
    const lines = error.message.split("\n");
    expect(lines[0]).toBe("invalid configuration (6 variables):");
    expect(lines.slice(1).map((line) => line.trim().split(":")[0])).toEqual([
      "PORT",
      "ROLE",
      "API_KEYS",
      "NAMESPACES",
      "JWT_SECRET",
      "PRESENCE_TTL_MS",
    ]);
  });
});

describe("ENV_VARS", () => {
  it("documents every variable once, with the defaults loadConfig applies", () => {
    const names = ENV_VARS.map((doc) => doc.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain("NAMESPACES");
    expect(ENV_VARS.find((doc) => doc.name === "PORT")?.default).toBe("8080");
    expect(ENV_VARS.find((doc) => doc.name === "NODE_ID")?.default).toBe("<hostname>-<6 random chars>");
    expect(ENV_VARS.find((doc) => doc.name === "RABBITMQ_URL")?.default).toBeUndefined();
    for (const doc of ENV_VARS) expect(doc.description.length).toBeGreaterThan(0);
  });

  it("renders help and markdown with every variable", () => {
    const help = formatEnvHelp();
    const markdown = formatEnvMarkdown();
    for (const doc of ENV_VARS) {
      expect(help).toContain(doc.name);
      expect(markdown).toContain(`\`${doc.name}\``);
    }
  });
});
