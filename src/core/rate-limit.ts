/**
 * A token bucket: `ratePerSec` tokens refill continuously up to `burst`.
 * Pure arithmetic on the time passed in, so tests drive it with any clock.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAtMs: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    nowMs: number,
  ) {
    this.tokens = burst;
    this.updatedAtMs = nowMs;
  }

  /** Takes `cost` tokens (one by default); on refusal tells how long until they are available (never, past `burst`). */
  take(nowMs: number, cost = 1): { ok: true } | { ok: false; retryAfterMs: number } {
    this.refill(nowMs);
    if (this.tokens >= cost) {
      this.tokens -= cost;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil(((cost - this.tokens) / this.ratePerSec) * 1000) };
  }

  /** What `take` would answer, without taking. */
  peek(nowMs: number, cost = 1): { ok: true } | { ok: false; retryAfterMs: number } {
    this.refill(nowMs);
    if (this.tokens >= cost) return { ok: true };
    return { ok: false, retryAfterMs: Math.ceil(((cost - this.tokens) / this.ratePerSec) * 1000) };
  }

  /** Refilled to `burst`: indistinguishable from a new bucket, so it can be forgotten. */
  isFull(nowMs: number): boolean {
    this.refill(nowMs);
    return this.tokens >= this.burst;
  }

  private refill(nowMs: number): void {
    const elapsedMs = Math.max(0, nowMs - this.updatedAtMs);
    this.tokens = Math.min(this.burst, this.tokens + (elapsedMs * this.ratePerSec) / 1000);
    this.updatedAtMs = nowMs;
  }
}

/**
 * One token bucket per key (a user, a client address), at most `maxKeys` of
 * them, so a client inventing keys cannot grow memory without bound. Kept in
 * least-recently-used order: each call first forgets the least recently used
 * buckets that have refilled (forgetting a full bucket changes no answer),
 * and past `maxKeys` the least recently used one whatever its state (that key
 * starts again with a full burst: the bound wins over exactness).
 */
export class KeyedTokenBuckets {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly options: { readonly ratePerSec: number; readonly burst: number; readonly maxKeys: number }) {}

  /** Buckets held now. */
  get size(): number {
    return this.buckets.size;
  }

  take(key: string, nowMs: number): { ok: true } | { ok: false; retryAfterMs: number } {
    return this.bucketFor(key, nowMs).take(nowMs);
  }

  /** What `take` would answer, without taking (and without holding a bucket for a new key). */
  peek(key: string, nowMs: number): { ok: true } | { ok: false; retryAfterMs: number } {
    return this.buckets.get(key)?.peek(nowMs) ?? { ok: true };
  }

  private bucketFor(key: string, nowMs: number): TokenBucket {
    const existing = this.buckets.get(key);
    if (existing) this.buckets.delete(key);
    this.evict(nowMs);
    const bucket = existing ?? new TokenBucket(this.options.ratePerSec, this.options.burst, nowMs);
    this.buckets.set(key, bucket);
    return bucket;
  }

  /** Amortized O(1): each bucket is forgotten once; the walk stops at the first one still in use. */
  private evict(nowMs: number): void {
    for (const [key, bucket] of this.buckets) {
      if (this.buckets.size < this.options.maxKeys && !bucket.isFull(nowMs)) return;
      this.buckets.delete(key);
    }
  }
}

/**
 * Tracks how long a connection has been continuously over its limit. A
 * flooding client still gets a frame through whenever a token refills, so an
 * accepted frame does not end the streak; a pause of `quietResetMs` without
 * refusals does (the client backed off as told by `retryAfterMs`).
 */
export class AbuseStreak {
  private sinceMs: number | undefined;
  private lastRefusalMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly closeAfterMs: number,
    private readonly quietResetMs = 1_000,
  ) {}

  /** Records a refusal; true when the streak has lasted `closeAfterMs`. */
  refused(nowMs: number): boolean {
    if (nowMs - this.lastRefusalMs > this.quietResetMs) this.sinceMs = nowMs;
    this.lastRefusalMs = nowMs;
    return nowMs - (this.sinceMs ?? nowMs) >= this.closeAfterMs;
  }
}
