import { HttpRejection } from "@sobranie/protocol/codes";
import type { Gateway } from "../../core/gateway.js";
import { AuthenticationError, type Authenticator, type Principal } from "../../core/ports/authenticator.js";
import { httpRateLimited, httpRefusal, type HttpRouteAnswer } from "../../core/ports/http-route.js";
import type { PusherEdgeLimits } from "./edge-limits.js";

/**
 * The user behind a `Bearer` JWT on a Pusher HTTP route (hosted auth, the
 * history endpoint): verified (401 with the verifier's reason), not revoked
 * (401), and within the per-user rate (429). A failure that is not the
 * token's fault is thrown, for the route's 503/500.
 */
export async function bearerUser(
  deps: { readonly authenticator: Authenticator; readonly gateway: Gateway; readonly limits: PusherEdgeLimits },
  token: string,
): Promise<{ ok: true; principal: Principal } | { ok: false; answer: HttpRouteAnswer }> {
  let principal: Principal;
  try {
    principal = await deps.authenticator.verify(token);
  } catch (error) {
    if (error instanceof AuthenticationError) return { ok: false, answer: httpRefusal(HttpRejection.Unauthorized, error.message) };
    throw error;
  }
  if (deps.gateway.isRevoked(principal)) return { ok: false, answer: httpRefusal(HttpRejection.Unauthorized, "token revoked: get a new token") };
  const byUser = deps.limits.takeUser(principal.userId);
  if (!byUser.ok) return { ok: false, answer: httpRateLimited("too many requests for this user", byUser.retryAfterMs) };
  return { ok: true, principal };
}
