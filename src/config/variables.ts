import { createPublicKey } from "node:crypto";
import { isIP } from "node:net";
import * as v from "valibot";
import { BUILT_IN_NAMESPACES } from "../core/namespaces.js";
import { publicKeyAlgorithmOf } from "../core/token-keys.js";
import { splitBrokerUrls } from "@sobranie/protocol/broker-urls";
import { NAMESPACE_PATTERN, RESERVED_NAMESPACES } from "@sobranie/protocol/channel";
import { API_KEY_SCOPE_RULE, isApiKeyScope, type ApiKeyScope } from "../core/api-key-scopes.js";

/**
 * Field schemas for single environment variables. Every one takes the raw
 * string (empty strings never reach them: they mean "unset") and either
 * yields a typed value or an issue whose message reads well after
 * `VARIABLE: `. Messages never echo a value that may hold a secret (URLs with
 * passwords, keys, tokens).
 */


/** JSON text parsed, or one issue with `invalidMessage` (the text itself is never echoed: it may hold a secret). */
function parsedJson(invalidMessage: string) {
  return v.rawTransform<string, unknown>(({ dataset, addIssue, NEVER }) => {
    try {
      return JSON.parse(dataset.value) as unknown;
    } catch {
      addIssue({ message: invalidMessage });
      return NEVER;
    }
  });
}

/** A whole decimal number in [min, max]: rejects `12abc`, `-1`, `1.5`, `1e3`, ` 8`. */
export function integer(min: number, max: number = Number.MAX_SAFE_INTEGER) {
  const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `from ${min} to ${max}`;
  return v.pipe(
    v.string(),
    v.regex(/^\d+$/, (issue) => `must be a whole number ${range}, got "${issue.input}"`),
    v.transform(Number),
    v.minValue(min, (issue) => `must be a whole number ${range}, got ${issue.input}`),
    v.maxValue(max, (issue) => `must be a whole number ${range}, got ${issue.input}`),
  );
}

export function oneOf<const T extends readonly string[]>(options: T) {
  return v.picklist(options, (issue) => `must be one of ${options.join(", ")}, got "${String(issue.input)}"`);
}

/** A URL whose scheme is one of `protocols` (with the trailing colon) and that names a host. */
export function url(protocols: readonly string[], example: string) {
  return v.pipe(
    v.string(),
    v.check((text) => isUrlOf(protocols, text), `must be a ${schemes(protocols)} URL with a host, like ${example}`),
  );
}

/**
 * A comma-separated list of AMQP URLs (see splitBrokerUrls), each checked
 * like `url`; a bad entry is named by its position, never by its text (it
 * may hold a password).
 */
export function brokerUrls(example: string) {
  const protocols = ["amqp:", "amqps:"];
  return v.pipe(
    v.string(),
    v.transform(splitBrokerUrls),
    v.rawCheck(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      if (dataset.value.length === 0) addIssue({ message: `must be a ${schemes(protocols)} URL, like ${example}` });
      dataset.value.forEach((entry, index) => {
        if (!isUrlOf(protocols, entry)) {
          const which = dataset.value.length === 1 ? "" : `entry #${index + 1} of ${dataset.value.length}: `;
          addIssue({ message: `${which}must be a ${schemes(protocols)} URL with a host, like ${example}` });
        }
      });
    }),
  );
}

function isUrlOf(protocols: readonly string[], text: string): boolean {
  const parsed = URL.canParse(text) ? new URL(text) : undefined;
  return parsed !== undefined && protocols.includes(parsed.protocol) && parsed.hostname !== "";
}

function schemes(protocols: readonly string[]): string {
  return protocols.map((protocol) => `${protocol}//`).join(" or ");
}

/**
 * A PEM SubjectPublicKeyInfo key (what jose's importSPKI reads). Env files
 * cannot hold newlines easily, so literal `\n` sequences are turned into line
 * breaks first. Guarantee: the output parses as an RSA or P-256 public key.
 */
export const publicKeyPem = v.pipe(
  v.string(),
  v.transform((text) => text.replaceAll("\\n", "\n").trim()),
  v.regex(
    /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----$/,
    "must be a PEM public key (-----BEGIN PUBLIC KEY-----); write line breaks as \\n if needed",
  ),
  v.check((pem) => verifiablePublicKey(pem), "must be an RSA or EC P-256 public key that parses (RS256/ES256)"),
);

/** The PEM parses, and as a key a token can be verified with (core/token-keys.ts). */
function verifiablePublicKey(pem: string): boolean {
  try {
    return publicKeyAlgorithmOf(createPublicKey({ key: pem, format: "pem" })) !== undefined;
  } catch {
    return false;
  }
}

/** Each key has at least this many characters: shorter ones are guessable. */
const MIN_API_KEY_CHARS = 16;

/** One API_KEYS entry: the key and what it may do. */
export interface ApiKeyEntry {
  readonly key: string;
  readonly scopes: readonly ApiKeyScope[];
}

/** Comma-separated keys, each with every scope; blanks around commas and empty items (a trailing comma) are ignored. */
const fullAccessApiKeys = v.pipe(
  v.string(),
  v.transform((text) => text.split(",").map((key) => key.trim()).filter((key) => key !== "")),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    dataset.value.forEach((key, index) => {
      if (key.length < MIN_API_KEY_CHARS) {
        addIssue({ message: `key #${index + 1} has ${key.length} characters; each key needs at least ${MIN_API_KEY_CHARS}` });
      }
    });
  }),
  v.transform((keys): ApiKeyEntry[] => keys.map((key) => ({ key, scopes: ["*"] }))),
);

// Messages name the entry by its position (the issue path) and never the key.
const scopedApiKey = v.strictObject(
  {
    key: v.pipe(
      v.string("key must be a string"),
      v.minLength(MIN_API_KEY_CHARS, (issue) => `key has ${issue.input.length} characters; each key needs at least ${MIN_API_KEY_CHARS}`),
      // presentedBearer reads `Bearer <key>` up to the first blank: a key with one could never be presented.
      v.regex(/^\S+$/, "key must not contain blanks (it is sent as Authorization: Bearer <key>)"),
    ),
    scopes: v.pipe(
      v.array(
        v.custom<ApiKeyScope>(
          (input) => typeof input === "string" && isApiKeyScope(input),
          (issue) =>
            typeof issue.input === "string"
              ? `scope "${issue.input.slice(0, 64)}" is not one of ${API_KEY_SCOPE_RULE} (a namespace matches ${NAMESPACE_PATTERN.source})`
              : "each scope must be a string",
        ),
        "scopes must be an array of scopes",
      ),
      v.minLength(1, "scopes must name at least one scope"),
    ),
  },
  'each entry must be {"key": "<at least 16 characters>", "scopes": [...]} and nothing else',
);

/** A JSON array of keys with their scopes: `[{"key":"…","scopes":["publish:post","read"]}]`; keys are unique. */
const scopedApiKeys = v.pipe(
  v.string(),
  parsedJson("starts with [ but is not valid JSON: write a JSON array of {key, scopes}, or comma-separated keys"),
  v.array(scopedApiKey, 'must be a JSON array of {"key", "scopes"} entries, or comma-separated keys'),
  v.minLength(1, "must hold at least one key (unset API_KEYS to disable the HTTP API)"),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const firstIndexOf = new Map<string, number>();
    dataset.value.forEach((entry, index) => {
      const first = firstIndexOf.get(entry.key);
      if (first === undefined) firstIndexOf.set(entry.key, index);
      else addIssue({ message: `[${index}].key: the same key as [${first}].key; each key appears once` });
    });
  }),
);

/**
 * API_KEYS: comma-separated keys with full access (the original form, meaning
 * what it always has), or, for a value starting with `[`, a JSON array of
 * keys with their scopes (core/api-key-scopes.ts).
 */
export const apiKeys = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const text = dataset.value.trimStart();
    // A JSON object would otherwise be read as one comma-separated key: its whole text.
    if (text.startsWith("{")) {
      addIssue({ message: 'is a JSON object: give keys comma-separated, or a JSON array [{"key": …, "scopes": [...]}]' });
      return NEVER;
    }
    const form = text.startsWith("[") ? scopedApiKeys : fullAccessApiKeys;
    const parsed = v.safeParse(form, dataset.value);
    if (parsed.success) return parsed.output;
    // Only messages and paths are passed on: an issue's input would be the key itself.
    for (const issue of parsed.issues) addIssue({ message: issue.message, path: issue.path });
    return NEVER;
  }),
);

/** Comma-separated namespace names (`user,room`); blanks and empty items are ignored, each name is checked against the grammar. */
export const namespaceNames = v.pipe(
  v.string(),
  v.transform((text) => [...new Set(text.split(",").map((name) => name.trim()).filter((name) => name !== ""))]),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    for (const name of dataset.value) {
      if (!NAMESPACE_PATTERN.test(name)) addIssue({ message: `"${name}" is not a namespace name (${NAMESPACE_PATTERN.source})` });
    }
  }),
);

/** At most this many extra namespaces: each becomes a label value, so the count stays bounded. */
const MAX_EXTRA_NAMESPACES = 64;
const builtInNames = new Set(BUILT_IN_NAMESPACES.map((policy) => policy.name));

const namespacePolicy = v.strictObject({
  name: v.pipe(
    v.string("name must be a string"),
    v.regex(NAMESPACE_PATTERN, (issue) => `name "${issue.input}" must match ${NAMESPACE_PATTERN.source}`),
    v.check((name) => !RESERVED_NAMESPACES.includes(name), (issue) => `name "${issue.input}" is reserved`),
    v.check((name) => !builtInNames.has(name), (issue) => `name "${issue.input}" is a built-in namespace`),
  ),
  subscribe: v.optional(v.picklist(["self", "claim", "any", "token"], 'subscribe must be "self", "claim", "any" or "token"'), "claim"),
  publish: v.optional(
    v.picklist(["none", "backend", "broadcast"], 'publish must be "none", "backend" or "broadcast"'),
    "none",
  ),
  durable: v.optional(v.boolean("durable must be true or false"), false),
  presence: v.optional(v.boolean("presence must be true or false"), false),
  pusherSeq: v.optional(v.boolean("pusherSeq must be true or false"), false),
});

/** A JSON array of extra namespace policies; the built-ins are added by `loadConfig`. */
export const namespaces = v.pipe(
  v.string(),
  parsedJson("must be a JSON array of namespace policies, and is not valid JSON"),
  v.array(namespacePolicy, "must be a JSON array of namespace policies"),
  v.maxLength(MAX_EXTRA_NAMESPACES, `may hold at most ${MAX_EXTRA_NAMESPACES} namespaces`),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const seen = new Set<string>();
    for (const policy of dataset.value) {
      if (seen.has(policy.name)) addIssue({ message: `name "${policy.name}" appears more than once` });
      seen.add(policy.name);
      // Only stored events have a seq to carry and a history to fetch.
      if (policy.pusherSeq && !policy.durable) addIssue({ message: `namespace "${policy.name}": pusherSeq needs durable: true (only stored events have a seq)` });
    }
  }),
);

const retentionOverride = v.strictObject({
  maxAgeMs: v.optional(v.pipe(v.number("maxAgeMs must be a number"), v.safeInteger("maxAgeMs must be whole"), v.minValue(1, "maxAgeMs must be at least 1"))),
  maxPerChannel: v.optional(
    v.pipe(v.number("maxPerChannel must be a number"), v.safeInteger("maxPerChannel must be whole"), v.minValue(1, "maxPerChannel must be at least 1")),
  ),
});

/** A JSON object of per-namespace retention overrides: `{"room":{"maxAgeMs":86400000,"maxPerChannel":500}}`. */
export const retention = v.pipe(
  v.string(),
  parsedJson("must be a JSON object of namespace → {maxAgeMs?, maxPerChannel?}, and is not valid JSON"),
  v.record(
    v.pipe(v.string(), v.regex(NAMESPACE_PATTERN, (issue) => `key "${issue.input}" is not a namespace name`)),
    retentionOverride,
    "must be a JSON object of namespace → {maxAgeMs?, maxPerChannel?}",
  ),
);

export interface AddressRange {
  readonly address: string;
  readonly prefix: number;
  readonly family: "ipv4" | "ipv6";
}

/** `10.0.0.0/8`, `fd00::/8`, or one address (a full-length prefix); undefined when it is neither. */
export function parseAddressRange(text: string): AddressRange | undefined {
  const slash = text.indexOf("/");
  const address = slash < 0 ? text : text.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return undefined;
  const bits = version === 4 ? 32 : 128;
  const prefixText = slash < 0 ? String(bits) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) return undefined;
  return { address, prefix: Number(prefixText), family: version === 4 ? "ipv4" : "ipv6" };
}

/** Comma-separated IP addresses and CIDR ranges; blanks and empty items are ignored. */
export const addressRanges = v.pipe(
  v.string(),
  v.transform((text) => text.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "")),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const ranges = dataset.value.map(parseAddressRange);
    const bad = dataset.value.filter((_, index) => ranges[index] === undefined);
    if (bad.length === 0) return ranges as AddressRange[];
    for (const entry of bad) addIssue({ message: `"${entry.slice(0, 64)}" is not an IP address or a CIDR range like 10.0.0.0/8` });
    return NEVER;
  }),
);

/** The webhook events a Pusher app may subscribe a URL to (docs/pusher.md, "Webhooks"). */
export const PUSHER_WEBHOOK_EVENTS = ["channel_occupied", "channel_vacated", "member_added", "member_removed", "client_event", "cache_miss"] as const;
/** App ids and keys appear in URL paths and labels: plain words only. */
const PUSHER_APP_WORD = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_PUSHER_APPS = 64;

const pusherWebhook = v.strictObject({
  url: v.pipe(v.string("webhook url must be a string"), v.check((text) => isUrlOf(["http:", "https:"], text), "webhook url must be an http or https URL with a host")),
  events: v.optional(
    v.pipe(
      v.array(v.picklist(PUSHER_WEBHOOK_EVENTS, `webhook events are ${PUSHER_WEBHOOK_EVENTS.join(", ")}`), "webhook events must be an array"),
      v.minLength(1, "webhook events, when given, must name at least one event"),
    ),
  ),
});

const pusherApp = v.strictObject({
  id: v.pipe(v.string("id must be a string"), v.regex(PUSHER_APP_WORD, "id must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -")),
  key: v.pipe(v.string("key must be a string"), v.regex(PUSHER_APP_WORD, "key must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -")),
  // Never echoed: the message names the rule, not the value.
  secret: v.pipe(v.string("secret must be a string"), v.minLength(16, "secret must have at least 16 characters")),
  enabled: v.optional(v.boolean("enabled must be true or false"), true),
  clientEvents: v.optional(v.boolean("clientEvents must be true or false"), false),
  maxConnections: v.optional(v.pipe(v.number("maxConnections must be a number"), v.safeInteger("maxConnections must be whole"), v.minValue(1, "maxConnections must be at least 1"))),
  signinTimeoutMs: v.optional(
    v.pipe(
      v.number("signinTimeoutMs must be a number"),
      v.safeInteger("signinTimeoutMs must be whole"),
      v.minValue(1_000, "signinTimeoutMs must be at least 1000"),
      v.maxValue(600_000, "signinTimeoutMs must be at most 600000"),
    ),
  ),
  webhooks: v.optional(v.pipe(v.array(pusherWebhook, "webhooks must be an array"), v.maxLength(8, "at most 8 webhooks per app")), []),
});

/** Pusher channel-name prefixes other than a namespace's name: dot-separated words of Pusher's alphabet, not starting with a kind prefix. */
export const PUSHER_PREFIX_PATTERN = /^[A-Za-z0-9_\-=@,;]{1,64}(\.[A-Za-z0-9_\-=@,;]{1,64}){0,7}$/;
const KIND_WORDS = /^(private-|presence-|cache-|#)/;

/** A JSON object of Pusher prefix → namespace (`{"App.Models.User":"user"}`); each namespace at most once. */
export const pusherChannelPrefixes = v.pipe(
  v.string(),
  parsedJson('must be a JSON object of Pusher prefix → namespace, like {"App.Models.User":"user"}, and is not valid JSON'),
  v.check((value) => !Array.isArray(value), 'must be a JSON object of Pusher prefix → namespace, like {"App.Models.User":"user"}, not an array'),
  v.record(v.string(), v.pipe(v.string("each value must be a namespace name"), v.regex(NAMESPACE_PATTERN, (issue) => `"${issue.input}" is not a namespace name`)), 'must be a JSON object of Pusher prefix → namespace, like {"App.Models.User":"user"}'),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const seen = new Set<string>();
    for (const [prefix, namespace] of Object.entries(dataset.value)) {
      if (!PUSHER_PREFIX_PATTERN.test(prefix) || KIND_WORDS.test(prefix)) {
        addIssue({ message: `prefix "${prefix}" must be 1 to 8 dot-separated words of A-Z, a-z, 0-9, _ - = @ , ; and not start with private-, presence-, cache- or #` });
      }
      if (seen.has(namespace)) addIssue({ message: `namespace "${namespace}" has more than one prefix` });
      seen.add(namespace);
    }
  }),
);

/** A JSON array of Pusher apps (docs/pusher.md); ids and keys are unique. */
export const pusherApps = v.pipe(
  v.string(),
  parsedJson("must be a JSON array of Pusher apps, and is not valid JSON"),
  v.array(pusherApp, "must be a JSON array of Pusher apps"),
  v.maxLength(MAX_PUSHER_APPS, `may hold at most ${MAX_PUSHER_APPS} apps`),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const ids = new Set<string>();
    const keys = new Set<string>();
    for (const app of dataset.value) {
      if (ids.has(app.id)) addIssue({ message: `app id "${app.id}" appears more than once` });
      if (keys.has(app.key)) addIssue({ message: `app key "${app.key}" appears more than once` });
      ids.add(app.id);
      keys.add(app.key);
    }
  }),
);
