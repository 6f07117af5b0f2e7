/**
 * The two tables every client relies on (docs/protocol.md §4). Server code
 * names a code through these tables (a refusal is counted by the same code it
 * is answered with); the string literals elsewhere are other vocabularies
 * (dead-letter reasons, the publisher SDK's validation codes).
 *
 * Close codes: 1xxx are RFC 6455 meanings; 4xxx are ours and tell the client
 * what to do next (4001: get a new token; 4008: heartbeat faster; 4013: read
 * faster or recover with `since`; 4029: back off).
 */
export const ErrorCode = {
  BadRequest: "bad_request",
  Unauthorized: "unauthorized",
  Forbidden: "forbidden",
  NotFound: "not_found",
  TooLarge: "too_large",
  RateLimited: "rate_limited",
  LimitExceeded: "limit_exceeded",
  Unavailable: "unavailable",
  Internal: "internal",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const CloseCode = {
  /** The client asked to leave, or the server ended a finished stream. */
  Normal: 1000,
  /** The server is going away for good (process exit without drain). */
  GoingAway: 1001,
  /** A frame was over `maxFrameBytes`. */
  TooLarge: 1009,
  /** An internal error: reconnect with backoff. */
  Internal: 1011,
  /** Drain / service restart: reconnect (after the `reconnect` frame's `afterMs`). */
  ServiceRestart: 1012,
  /** Token expired or revoked: reconnect with a new token. */
  TokenExpired: 4001,
  /** The backend ended the user's access (banned, signed out everywhere): final, do not reconnect. */
  Revoked: 4003,
  /** No heartbeat within `ttlMs`. */
  HeartbeatMissed: 4008,
  /** The send buffer passed its limit: the client was reading too slowly. */
  TooSlow: 4013,
  /** Sustained rate-limit abuse. */
  RateLimitAbused: 4029,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * Codes the client SDK reports to itself that no server sends, kept out of
 * `CloseCode` so the server cannot close with them and metrics never count
 * them. `Abnormal` (RFC 6455 §7.1.5): the connection ended without a close
 * frame (a WebSocket the browser reports as 1006, an SSE stream that ended
 * or failed): reconnect with backoff. `Refused`: the SSE request was refused
 * with an HTTP 4xx other than 401 (→ TokenExpired) and 429 (→
 * RateLimitAbused), such as 400, 403 or 404, or this runtime's fetch cannot
 * stream a body: final, like `Revoked`, since retrying the same request gets
 * the same answer (4400 mirrors HTTP 400 in the private range).
 */
export const ClientCloseCode = {
  Abnormal: 1006,
  Refused: 4400,
} as const;
export type ClientCloseCode = (typeof ClientCloseCode)[keyof typeof ClientCloseCode];

/**
 * Why a `gap` frame was sent: events of the channel may be missing from what
 * this connection received. `interrupted`: the node's broker feed was
 * interrupted and the channel's namespace is not durable (nothing can replay
 * it; refetch what you show). `incomplete`: the channel is durable but its
 * history could not return everything missed (retention, or the store was
 * unreachable).
 */
export const GapReason = {
  Interrupted: "interrupted",
  Incomplete: "incomplete",
} as const;
export type GapReason = (typeof GapReason)[keyof typeof GapReason];

/**
 * Why the server ended a subscription (`unsubscribed` frame). The client
 * drops the subscription and does not resubscribe on its own, not even after
 * a reconnect. `revoked`: the backend removed the user from the channel.
 * `forbidden`: a refreshed token no longer allows the channel. `expired`: the
 * subscription's own token (docs/protocol.md §10) expired without a
 * refresh; subscribe again with a new one.
 */
export const UnsubscribeReason = {
  Revoked: "revoked",
  Forbidden: "forbidden",
  Expired: "expired",
} as const;
export type UnsubscribeReason = (typeof UnsubscribeReason)[keyof typeof UnsubscribeReason];

/** HTTP statuses the HTTP API and the WebSocket/SSE upgrade answer with, with the error code in the JSON body. */
export const HttpRejection = {
  Unauthorized: { status: 401, code: ErrorCode.Unauthorized },
  TooManyConnections: { status: 429, code: ErrorCode.LimitExceeded },
  RateLimited: { status: 429, code: ErrorCode.RateLimited },
  Unavailable: { status: 503, code: ErrorCode.Unavailable },
  BadRequest: { status: 400, code: ErrorCode.BadRequest },
  NotFound: { status: 404, code: ErrorCode.NotFound },
  TooLarge: { status: 413, code: ErrorCode.TooLarge },
  Internal: { status: 500, code: ErrorCode.Internal },
} as const;
export type HttpRejection = (typeof HttpRejection)[keyof typeof HttpRejection];
