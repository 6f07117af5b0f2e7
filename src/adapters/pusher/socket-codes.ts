import { CloseCode, ErrorCode } from "@sobranie/protocol/codes";

/**
 * The Pusher protocol's close and error codes (pusher-websockets-protocol,
 * "Error codes"), and how the core's codes map onto them. What pusher-js
 * does with a close code is fixed by its range: 4000–4099 it never
 * reconnects, 4100–4199 it reconnects after a backoff, 4200–4299 it
 * reconnects at once, and from 4300 on it never reconnects — so the gateway
 * closes with a 4000-range code only where the refusal is final, and never
 * with one from 4300 on.
 */
export const PusherCode = {
  /** No app has this key. */
  AppUnknown: 4001,
  /** The app is disabled. */
  AppDisabled: 4003,
  /** `protocol` is not a whole number. */
  InvalidVersion: 4006,
  /** `protocol` below 5: the client does not answer `pusher:ping`. */
  UnsupportedProtocol: 4007,
  /** No `protocol` query parameter. */
  NoProtocol: 4008,
  /** The connection's access ended for good. */
  Unauthorized: 4009,
  /** Over the app's or the node's capacity: reconnect after a backoff. */
  OverCapacity: 4100,
  /** Drain, deploy or broker loss: reconnect now (to another node). */
  Reconnect: 4200,
  /** No frame and no pong within the activity timeout and its grace. */
  PongNotReceived: 4201,
  /** `pusher:error` only, never a close: frames (client events) refused by the rate limit. */
  RateLimited: 4301,
} as const;
export type PusherCode = (typeof PusherCode)[keyof typeof PusherCode];

/**
 * The Pusher close code for each core close code. A frame too large keeps
 * 1009, which pusher-js treats like a dropped connection (it reconnects).
 */
export const PUSHER_CLOSE_CODES: Readonly<Record<CloseCode, number>> = {
  [CloseCode.Normal]: 1000,
  [CloseCode.GoingAway]: PusherCode.Reconnect,
  [CloseCode.TooLarge]: 1009,
  [CloseCode.Internal]: PusherCode.Reconnect,
  [CloseCode.ServiceRestart]: PusherCode.Reconnect,
  // A Pusher connection has no token that expires; what closes it with these is a backend's control command for its user.
  [CloseCode.TokenExpired]: PusherCode.Unauthorized,
  [CloseCode.Revoked]: PusherCode.Unauthorized,
  [CloseCode.HeartbeatMissed]: PusherCode.PongNotReceived,
  [CloseCode.TooSlow]: PusherCode.OverCapacity,
  [CloseCode.RateLimitAbused]: PusherCode.OverCapacity,
};

/** Every code the gateway closes a Pusher connection with (metrics count closes by these; a client's own other codes are "other"). */
export const PUSHER_SERVER_CLOSE_CODES: ReadonlySet<number> = new Set([
  ...Object.values(PusherCode).filter((code) => code !== PusherCode.RateLimited),
  ...Object.values(PUSHER_CLOSE_CODES),
]);

/** The `code` of the `pusher:error` that reports a core refusal outside any subscription (null: Pusher has no code for it). */
export function pusherErrorCode(code: ErrorCode): number | null {
  return code === ErrorCode.RateLimited ? PusherCode.RateLimited : null;
}

/** The `status` of a `pusher:subscription_error` for a core refusal of the subscribe, as HTTP statuses read. */
export const SUBSCRIPTION_ERROR_STATUS: Readonly<Record<ErrorCode, number>> = {
  [ErrorCode.BadRequest]: 400,
  [ErrorCode.Unauthorized]: 401,
  [ErrorCode.Forbidden]: 403,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.TooLarge]: 413,
  [ErrorCode.RateLimited]: 429,
  [ErrorCode.LimitExceeded]: 429,
  [ErrorCode.Unavailable]: 503,
  [ErrorCode.Internal]: 500,
};
