import * as v from "valibot";
import { silentLogger, type Logger } from "../core/ports/logger.js";

export interface PublisherOptions {
  /** `amqp://user:pass@host:5672/vhost`; a 10 s heartbeat is added when the URL names none. */
  readonly url: string;
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
}

export interface ParsedPublisherOptions {
  readonly url: string;
  readonly connectionName: string;
  readonly maxBuffered: number;
  readonly logger: Logger;
  readonly reconnect: { readonly initialDelayMs: number; readonly maxDelayMs: number };
}

export function defaultOptions(): Omit<ParsedPublisherOptions, "url"> {
  return {
    connectionName: "sobranie-publisher",
    maxBuffered: 10_000,
    logger: silentLogger,
    reconnect: { initialDelayMs: 100, maxDelayMs: 10_000 },
  };
}

const defaults = defaultOptions();
const PositiveInt = v.pipe(v.number(), v.integer(), v.minValue(1));

const OptionsSchema = v.object({
  url: v.pipe(v.string("url must be a string"), v.url(), v.regex(/^amqps?:\/\//, "url must start with amqp:// or amqps://")),
  connectionName: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(255)), defaults.connectionName),
  maxBuffered: v.optional(PositiveInt, defaults.maxBuffered),
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
  const parsed = v.safeParse(OptionsSchema, options);
  if (!parsed.success) throw new TypeError(`invalid publisher options: ${v.summarize(parsed.issues)}`);
  return { ...parsed.output, logger: options.logger ?? defaults.logger };
}
