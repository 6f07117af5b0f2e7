/**
 * The HTTP edge's rate limits as the Pusher routes use them: the same
 * buckets as the rest of the HTTP API (adapters/uws HttpLimits satisfies
 * this), so a badly signed Pusher request counts against its address like a
 * wrong API key (API_KEY_FAILURES_PER_MIN), and a hosted auth request like
 * any user-token request (HTTP_RATE_*).
 */
export type EdgeLimitVerdict = { ok: true } | { ok: false; retryAfterMs: number };

export interface PusherEdgeLimits {
  /** Refused while `source` has used up its failed credentials. */
  checkApiKeyFailures(source: string): EdgeLimitVerdict;
  apiKeyFailed(source: string): void;
  /** A credential's own rate refused a request (counted as `api_key`). */
  apiKeyRateRefused(): void;
  takeSource(source: string): EdgeLimitVerdict;
  takeUser(userId: string): EdgeLimitVerdict;
}
