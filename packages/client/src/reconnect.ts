import { backoffDelayMs, type BackoffOptions } from "./backoff.js";
import { ClientCloseCode, CloseCode } from "@sobranie/protocol/codes";
import { RealtimeError } from "./types.js";

/** What a closed connection leads to: the client gives up with `error`, or it reconnects. */
export type AfterClose =
  | { readonly kind: "final"; readonly error: RealtimeError }
  /** `freshToken`: ask the token provider again first; `slowest`: wait at least the longest backoff (the server saw abuse). */
  | { readonly kind: "reconnect"; readonly freshToken: boolean; readonly slowest: boolean };

/**
 * The close-code policy: a refusal (4400, HTTP 4xx of SSE), a revocation
 * (4003) and an expired token with no provider to renew it (4001) are final;
 * everything else reconnects.
 */
export function afterClose(code: number, reason: string, tokenRenewable: boolean): AfterClose {
  if (code === ClientCloseCode.Refused) return { kind: "final", error: new RealtimeError("bad_request", reason) };
  if (code === CloseCode.Revoked) return { kind: "final", error: new RealtimeError("revoked", `the server ended this user's access: ${reason}`) };
  const expired = code === CloseCode.TokenExpired;
  if (expired && !tokenRenewable) return { kind: "final", error: new RealtimeError("unauthorized", "token expired or rejected, and no token provider to get a new one") };
  return { kind: "reconnect", freshToken: expired, slowest: code === CloseCode.RateLimitAbused };
}

/**
 * When to reconnect: exponential backoff with full jitter over the attempts
 * since the last `welcome`, unless the server's `reconnect` frame named the
 * moment (`afterMs`), which then counts for the next attempt only.
 */
export class ReconnectSchedule {
  private attempt = 0;
  private serverAfterMs: number | undefined;

  constructor(
    private readonly backoff: BackoffOptions,
    private readonly random: () => number,
  ) {}

  /** No attempt has failed since the client started (or last connected, or switched transport). */
  get firstAttempt(): boolean {
    return this.attempt === 0;
  }

  /** A `welcome`: the next drop starts the backoff over. */
  connected(): void {
    this.attempt = 0;
    this.serverAfterMs = undefined;
  }

  /** A switch to another transport starts the backoff over. */
  restart(): void {
    this.attempt = 0;
  }

  /** The server's `reconnect` frame: the next delay is `afterMs`. */
  serverAsked(afterMs: number): void {
    this.serverAfterMs = afterMs;
  }

  /** The delay before the next attempt (and counts it); `slowest` makes it at least the longest backoff. */
  nextDelayMs(slowest: boolean): number {
    const delay = Math.max(this.serverAfterMs ?? backoffDelayMs(this.attempt, this.backoff, this.random), slowest ? this.backoff.maxDelayMs : 0);
    this.serverAfterMs = undefined;
    this.attempt += 1;
    return delay;
  }
}
