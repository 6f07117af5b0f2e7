import { HttpRejection } from "@sobranie/protocol/codes";
import { AuthenticationError, type Authenticator, type Principal } from "../core/ports/authenticator.js";
import type { HttpLimits } from "./http-limits.js";
import { refuseConnection, type PendingReply } from "./http-reply.js";
import type { Metrics } from "../core/ports/metrics.js";

export interface UserTokenGateDeps {
  readonly authenticator: Authenticator;
  readonly limits: HttpLimits;
}

export interface UserTokenOptions {
  /** Answered 401 when no token was presented. */
  readonly missingToken: string;
  /**
   * The HTTP rates (docs/protocol.md §7.1) for the caller at this address
   * (HttpLimits.sourceOf): the address's before the token is verified, so a
   * flood of bad tokens costs a map lookup rather than a signature check,
   * and the user's after. Undefined for the WebSocket upgrade, which has the
   * core's connection rates instead.
   */
  readonly httpRatesFrom: string | undefined;
}

export type UserVerdict =
  | { readonly ok: true; readonly principal: Principal }
  | { readonly ok: false; readonly refusal: "unauthorized"; readonly message: string }
  | { readonly ok: false; readonly refusal: "rate_limited"; readonly message: string; readonly retryAfterMs: number };

export type UserRefusal = Extract<UserVerdict, { ok: false }>;

/**
 * The admission every user-token route takes (inbox, status, SSE, the
 * WebSocket upgrade), in order: a token (read in the handler's own turn) at all, the address's rate, the
 * token, the user's rate. `decided` runs once: in this turn when the
 * authenticator can decide now (`verifyNow`: the WebSocket upgrade then
 * happens in uWS's handler turn, see JwtAuthenticator.verifyNow), else once
 * `verify` settled. A failure other than AuthenticationError is answered
 * "token could not be verified", never with its own text.
 */
export function admitUser(deps: UserTokenGateDeps, token: string | undefined, options: UserTokenOptions, decided: (verdict: UserVerdict) => void): void {
  const rated = options.httpRatesFrom !== undefined;
  if (!token) return decided({ ok: false, refusal: "unauthorized", message: options.missingToken });
  if (options.httpRatesFrom !== undefined) {
    const bySource = deps.limits.takeSource(options.httpRatesFrom);
    if (!bySource.ok) return decided({ ok: false, refusal: "rate_limited", message: "too many requests from this address", retryAfterMs: bySource.retryAfterMs });
  }
  const verified = (principal: Principal): void => {
    if (!rated) return decided({ ok: true, principal });
    const byUser = deps.limits.takeUser(principal.userId);
    if (!byUser.ok) return decided({ ok: false, refusal: "rate_limited", message: "too many requests for this user", retryAfterMs: byUser.retryAfterMs });
    decided({ ok: true, principal });
  };
  const failed = (error: unknown): void =>
    decided({ ok: false, refusal: "unauthorized", message: error instanceof AuthenticationError ? error.message : "token could not be verified" });
  let now: Principal | undefined;
  try {
    now = deps.authenticator.verifyNow?.(token);
  } catch (error) {
    return failed(error);
  }
  if (now) return verified(now);
  deps.authenticator.verify(token).then(verified, failed);
}

/**
 * Answers a refusal: 429 with Retry-After, or 401 with its message. With
 * `connections` (SSE, WebSocket), a 401 is counted as a refused connection.
 */
export function refuseUser(reply: PendingReply, refusal: UserRefusal, connections?: Metrics): void {
  if (refusal.refusal === "rate_limited") return reply.rateLimited(refusal.message, refusal.retryAfterMs);
  if (connections) return refuseConnection(reply, connections, "unauthorized", refusal.message);
  reply.reject(HttpRejection.Unauthorized, refusal.message);
}
