import { createHash, timingSafeEqual } from "node:crypto";
import { TokenBucket } from "../core/rate-limit.js";

/**
 * Backend API keys (`API_KEYS`). Keys are compared as SHA-256 digests with
 * timingSafeEqual, so neither a key's length nor its prefix leaks through
 * response timing. Each key has its own token bucket.
 */
export class ApiKeys {
  private readonly digests: Buffer[];
  private readonly buckets = new Map<number, TokenBucket>();

  constructor(
    keys: readonly string[],
    private readonly rate: { perSec: number; burst: number },
  ) {
    this.digests = keys.map(digest);
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /** The index of the matching key, or undefined. Every key is compared, whichever matches. */
  identify(presented: string): number | undefined {
    const candidate = digest(presented);
    let found: number | undefined;
    this.digests.forEach((known, index) => {
      if (timingSafeEqual(known, candidate)) found = index;
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
