import { HttpRejection } from "@sobranie/protocol/codes";

/**
 * An HTTP route written without a runtime: a request read in full goes in,
 * a JSON answer comes out. The edge (src/adapters/uws/http-routes.ts) reads
 * what the route asks for in the runtime's handler turn, collects the body,
 * refuses one over `maxBodyBytes` with 413 before `handle` runs, and writes
 * the answer. The Pusher REST API and auth endpoints are such routes, so they
 * can be tested without a socket and attached to any edge.
 */
export interface HttpRouteRequest {
  /** The path as sent, not decoded, without the query. */
  readonly path: string;
  /** The pattern's `:name` segments in order, as sent (not decoded). */
  readonly parameters: readonly string[];
  /** The query string as sent (not decoded), without `?`; "" when there is none. */
  readonly query: string;
  /** The headers the route listed, by lower-case name; "" when absent. */
  readonly headers: Readonly<Record<string, string>>;
  /** Empty when the request had none, and for GET. */
  readonly body: Uint8Array;
  /** The client's address, trusted proxies resolved (HttpLimits.sourceOf). */
  readonly source: string;
}

export interface HttpRouteAnswer {
  readonly status: number;
  /** Written as JSON. */
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface HttpRoute {
  readonly method: "GET" | "POST";
  /** uWS pattern syntax: `/apps/:id/events`. */
  readonly pattern: string;
  /** POST bodies over this are answered 413 `body over N bytes`. */
  readonly maxBodyBytes: number;
  /** The request headers `handle` reads, lower case. */
  readonly headers: readonly string[];
  /** Answered 503 when `handle` throws a retryable error (the broker away); any other throw is answered 500 and logged. */
  readonly unavailable: string;
  handle(request: HttpRouteRequest): Promise<HttpRouteAnswer>;
}

/** The error answer every HTTP API route gives: `{error: {code, message}}` with the rejection's status. */
export function httpRefusal(rejection: HttpRejection, message: string): HttpRouteAnswer {
  return { status: rejection.status, body: { error: { code: rejection.code, message } } };
}

/** 429 with `Retry-After` in whole seconds (rounded up) and `retryAfterMs` in the body. */
export function httpRateLimited(message: string, retryAfterMs: number): HttpRouteAnswer & { readonly headers: Readonly<Record<string, string>> } {
  return {
    status: HttpRejection.RateLimited.status,
    body: { error: { code: HttpRejection.RateLimited.code, message, retryAfterMs } },
    headers: { "retry-after": String(Math.max(1, Math.ceil(retryAfterMs / 1000))) },
  };
}
