import { createHash, timingSafeEqual } from "node:crypto";
import { ApiKeyScopes, type ApiKeyScope } from "../core/api-key-scopes.js";
import { TokenBucket } from "../core/rate-limit.js";

/** A presented key that is one of API_KEYS: which one (for its rate), and what it may do. */
export interface IdentifiedApiKey {
  readonly index: number;
  readonly scopes: ApiKeyScopes;
}

/**
 * Backend API keys (`API_KEYS`). Keys are compared as SHA-256 digests with
 * timingSafeEqual, so neither a key's length nor its prefix leaks through
 * response timing. Each key has its own token bucket and its own scopes.
 */
export class ApiKeys {
  private readonly known: readonly { readonly digest: Buffer; readonly scopes: ApiKeyScopes }[];
  private readonly buckets = new Map<number, TokenBucket>();

  constructor(
    keys: readonly { readonly key: string; readonly scopes: readonly ApiKeyScope[] }[],
    private readonly rate: { perSec: number; burst: number },
  ) {
    this.known = keys.map(({ key, scopes }) => ({ digest: digest(key), scopes: new ApiKeyScopes(scopes) }));
  }

  get enabled(): boolean {
    return this.known.length > 0;
  }

  /** The matching key, or undefined. Every key is compared, whichever matches. */
  identify(presented: string): IdentifiedApiKey | undefined {
    const candidate = digest(presented);
    let found: IdentifiedApiKey | undefined;
    this.known.forEach((known, index) => {
      if (timingSafeEqual(known.digest, candidate)) found = { index, scopes: known.scopes };
    });
    return found;
  }

  take(keyIndex: number, nowMs: number): { ok: true } | { ok: false; retryAfterMs: number } {
    let bucket = this.buckets.get(keyIndex);
    if (!bucket) this.buckets.set(keyIndex, (bucket = new TokenBucket(this.rate.perSec, this.rate.burst, nowMs)));
    return bucket.take(nowMs);
  }
}

function digest(key: string): Buffer {
  return createHash("sha256").update(key).digest();
}
