import * as v from "valibot";
import { silentLogger, type Logger } from "@sobranie/protocol/runtime/logger";
import { splitBrokerUrls } from "@sobranie/protocol/broker-urls";

export interface PublisherOptions {
  /**
   * `amqp://user:pass@host:5672/vhost`, or the cluster's nodes as an array or
   * a comma-separated list, tried in rotation (a node that fails or hangs is
   * left for the next); a 5 s heartbeat is added when a URL names none.
   */
  readonly url: string | readonly string[];
  /** Shown in the RabbitMQ management UI. Default `sobranie-publisher`. */
  readonly connectionName?: string;
  /**
   * Most events accepted and not yet confirmed by the broker (buffered while
   * it is away plus in flight). Beyond it `publish` rejects at once with
   * `PublisherBufferFullError`. Memory bound: maxBuffered × 64 KiB. Default 10 000.
   */
  readonly maxBuffered?: number;
  /** Structured logger (pino fits). Default: silent. */
  readonly logger?: Logger;
  /** Reconnect backoff: full jitter, doubling from initialDelayMs up to maxDelayMs. Defaults 100 ms and 10 s. */
  readonly reconnect?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number };
  /**
   * A confirm not received within this ends the connection: its node is hung
   * or behind a hung queue. The unconfirmed events are written again on the
   * next connection (at-least-once, as after any loss). Default 5 000 ms.
   */
  readonly confirmTimeoutMs?: number;
}

export interface ParsedPublisherOptions {
  readonly urls: readonly string[];
  readonly connectionName: string;
  readonly maxBuffered: number;
  readonly logger: Logger;
  readonly reconnect: { readonly initialDelayMs: number; readonly maxDelayMs: number };
  readonly confirmTimeoutMs: number;
}

export function defaultOptions(): Omit<ParsedPublisherOptions, "urls"> {
  return {
    connectionName: "sobranie-publisher",
    maxBuffered: 10_000,
    logger: silentLogger,
    reconnect: { initialDelayMs: 100, maxDelayMs: 10_000 },
    confirmTimeoutMs: 5_000,
  };
}

const defaults = defaultOptions();
const PositiveInt = v.pipe(v.number(), v.integer(), v.minValue(1));

const BrokerUrl = v.pipe(v.string("url must be a string"), v.url(), v.regex(/^amqps?:\/\//, "url must start with amqp:// or amqps://"));

const OptionsSchema = v.object({
  urls: v.pipe(v.array(BrokerUrl), v.minLength(1, "url must name at least one broker")),
  connectionName: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(255)), defaults.connectionName),
  maxBuffered: v.optional(PositiveInt, defaults.maxBuffered),
  confirmTimeoutMs: v.optional(PositiveInt, defaults.confirmTimeoutMs),
  reconnect: v.optional(
    v.object({
      initialDelayMs: v.optional(PositiveInt, defaults.reconnect.initialDelayMs),
      maxDelayMs: v.optional(PositiveInt, defaults.reconnect.maxDelayMs),
    }),
    {},
  ),
});

/** Validates the options once, at construction: a bad URL fails here, not in an endless reconnect loop. */
export function parseOptions(options: PublisherOptions): ParsedPublisherOptions {
  const { url, ...rest } = options;
  // Anything but a string goes to the schema as it is: a non-array is reported there.
  const urls: unknown = typeof url === "string" ? splitBrokerUrls(url) : url;
  const parsed = v.safeParse(OptionsSchema, { ...rest, urls });
  if (!parsed.success) throw new TypeError(`invalid publisher options: ${v.summarize(parsed.issues)}`);
  return { ...parsed.output, logger: options.logger ?? defaults.logger };
}
