import { HttpRejection } from "@sobranie/protocol/codes";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { ApiKeys } from "./api-keys.js";
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

export type ApiKeyVerdict = { ok: true } | { ok: false; status: HttpRejection; message: string; retryAfterMs?: number };

/**
 * The backend API's admission, the same on every API-key route: refused
 * while the address has used up its failed attempts (API_KEY_FAILURES_PER_MIN;
 * no key is compared then), a wrong key counted against the address, then
 * the key's own rate (API_RATE_PER_SEC).
 */
export function admitApiKey(deps: ApiKeyGateDeps, presented: string | undefined, source: string, wording: ApiKeyWording): ApiKeyVerdict {
  if (!deps.apiKeys.enabled) return { ok: false, status: HttpRejection.NotFound, message: wording.disabled };
  const failures = deps.limits.checkApiKeyFailures(source);
  if (!failures.ok) return { ok: false, status: HttpRejection.RateLimited, message: "too many wrong API keys from this address", retryAfterMs: failures.retryAfterMs };
  const keyIndex = presented === undefined ? undefined : deps.apiKeys.identify(presented);
  if (keyIndex === undefined) {
    if (presented !== undefined) deps.limits.apiKeyFailed(source);
    return { ok: false, status: HttpRejection.Unauthorized, message: "a valid API key is required: Authorization: Bearer <key>" };
  }
  return takeApiKeyRate(deps, keyIndex, wording.overRate);
}

/** The key's own rate, for a route that identified the key itself. */
export function takeApiKeyRate(deps: ApiKeyGateDeps, keyIndex: number, overRate: string): ApiKeyVerdict {
  const verdict = deps.apiKeys.take(keyIndex, deps.clock.now());
  if (verdict.ok) return { ok: true };
  deps.limits.apiKeyRateRefused();
  return { ok: false, status: HttpRejection.RateLimited, message: overRate, retryAfterMs: verdict.retryAfterMs };
}

/** Answers a refusal: 429 with Retry-After when it carries a wait, else its own status. */
export function refuseApiKey(reply: PendingReply, verdict: Exclude<ApiKeyVerdict, { ok: true }>): void {
  if (verdict.retryAfterMs !== undefined) return reply.rateLimited(verdict.message, verdict.retryAfterMs);
  reply.reject(verdict.status, verdict.message);
}
