import type { BackoffOptions } from "./backoff.js";
import type { SubscriptionTokenSource } from "./subscription-tokens.js";
import type { TokenSource } from "./token.js";
import type { FetchLike, WebSocketFactory } from "./transports.js";
import type { TransportKind } from "./types.js";

export interface ConnectOptions {
  /** The gateway's base URL: `https://host` (or `wss://host`); `/realtime/ws` and `/realtime/events` are appended. */
  readonly url: string;
  /** A token, or a function returning a fresh one: called at connect, before `exp` (refresh) and after close 4001. */
  readonly token: TokenSource;
  /** `auto` (default): WebSocket, falling back to SSE where WebSocket is missing or keeps failing before `welcome`. */
  readonly transport?: "auto" | TransportKind;
  readonly reconnect?: Partial<BackoffOptions>;
  /**
   * For namespaces whose subscribe is "token" (docs/protocol.md §10):
   * when given, it is called for every channel at each subscribe (after a
   * reconnect too) and before the channel's token expires; resolve
   * null/undefined for a channel that needs no token. WebSocket only.
   */
  readonly getSubscriptionToken?: SubscriptionTokenSource;
  /** Refresh this long before `exp` (the connection token's and each subscription token's); default a tenth of the token's lifetime, at most 60 s. */
  readonly refreshBeforeExpMs?: number;
  /** A request without a reply in this time is rejected (default 15 s). */
  readonly requestTimeoutMs?: number;
  /** WebSocket attempts that fail before `welcome` before `auto` switches to SSE (default 2). */
  readonly fallbackAfterFailures?: number;
  /** Implementations to use instead of the globals (React Native, tests). */
  readonly WebSocket?: WebSocketFactory;
  readonly fetch?: FetchLike;
  /** [0, 1): the jitter source. */
  readonly random?: () => number;
}

/** The WebSocket to use: the option's, else the runtime's global; undefined where neither exists. */
export function resolveWebSocket(options: ConnectOptions): WebSocketFactory | undefined {
  return options.WebSocket ?? (globalThis as { WebSocket?: WebSocketFactory }).WebSocket;
}

/** The fetch to use: the option's, else the runtime's global; undefined where neither exists. */
export function resolveFetch(options: ConnectOptions): FetchLike | undefined {
  return options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
}

/** The gateway's base URL in the scheme family a transport needs (`ws(s)` or `http(s)`), without a trailing slash. */
export function baseUrl(options: ConnectOptions, scheme: "ws" | "http"): string {
  const base = options.url.replace(/\/+$/, "");
  return scheme === "ws" ? base.replace(/^http/, "ws") : base.replace(/^ws/, "http");
}
