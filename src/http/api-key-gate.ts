import { HttpRejection } from "@sobranie/protocol/codes";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { ApiKeyAction } from "../core/api-key-scopes.js";
import type { ApiKeys, IdentifiedApiKey } from "./api-keys.js";
import type { HttpLimits } from "./http-limits.js";
import type { PendingReply } from "./http-reply.js";

export interface ApiKeyGateDeps {
  readonly apiKeys: ApiKeys;
  readonly limits: HttpLimits;
  readonly clock: Clock;
}

/** How a route names itself in the gate's refusals. */
export interface ApiKeyWording {
  /** Answered 404 while API_KEYS is unset, e.g. "the HTTP publish API is disabled: set API_KEYS". */
  readonly disabled: string;
  /** Answered 429 past the key's own rate, e.g. "too many publishes for this API key". */
  readonly overRate: string;
}

export type ApiKeyRefusal = { ok: false; status: HttpRejection; message: string; retryAfterMs?: number };
export type ApiKeyVerdict = { ok: true } | ApiKeyRefusal;
/** An admitted request's key: what its route checks the request's action against (`authorizeApiKey`). */
export type ApiKeyAdmission = { ok: true; key: IdentifiedApiKey } | ApiKeyRefusal;

/**
 * The backend API's admission, the same on every API-key route: refused
 * while the address has used up its failed attempts (API_KEY_FAILURES_PER_MIN;
 * no key is compared then), a wrong key counted against the address, then
 * the key's own rate (API_RATE_PER_SEC). What the key may do is the route's
 * to check, once it knows the action (a publish's channel is in its body).
 */
export function admitApiKey(deps: ApiKeyGateDeps, presented: string | undefined, source: string, wording: ApiKeyWording): ApiKeyAdmission {
  if (!deps.apiKeys.enabled) return { ok: false, status: HttpRejection.NotFound, message: wording.disabled };
  const failures = deps.limits.checkApiKeyFailures(source);
  if (!failures.ok) return { ok: false, status: HttpRejection.RateLimited, message: "too many wrong API keys from this address", retryAfterMs: failures.retryAfterMs };
  const key = presented === undefined ? undefined : deps.apiKeys.identify(presented);
  if (key === undefined) {
    if (presented !== undefined) deps.limits.apiKeyFailed(source);
    return { ok: false, status: HttpRejection.Unauthorized, message: "a valid API key is required: Authorization: Bearer <key>" };
  }
  return takeApiKeyRate(deps, key, wording.overRate);
}

/** The key's own rate, for a route that identified the key itself. */
export function takeApiKeyRate(deps: ApiKeyGateDeps, key: IdentifiedApiKey, overRate: string): ApiKeyAdmission {
  const verdict = deps.apiKeys.take(key.index, deps.clock.now());
  if (verdict.ok) return { ok: true, key };
  deps.limits.apiKeyRateRefused();
  return { ok: false, status: HttpRejection.RateLimited, message: overRate, retryAfterMs: verdict.retryAfterMs };
}

/**
 * 403 `forbidden` unless one of the key's scopes covers `action`. Not counted
 * as a wrong key: the key was right, and retrying it gets the same answer.
 */
export function authorizeApiKey(key: IdentifiedApiKey, action: ApiKeyAction): ApiKeyVerdict {
  if (key.scopes.allows(action)) return { ok: true };
  return { ok: false, status: HttpRejection.Forbidden, message: key.scopes.refusal(action) };
}

/** Answers a refusal: 429 with Retry-After when it carries a wait, else its own status. */
export function refuseApiKey(reply: PendingReply, refusal: ApiKeyRefusal): void {
  if (refusal.retryAfterMs !== undefined) return reply.rateLimited(refusal.message, refusal.retryAfterMs);
  reply.reject(refusal.status, refusal.message);
}
