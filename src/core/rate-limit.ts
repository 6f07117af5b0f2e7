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

  private refill(nowMs: number): void {
    const elapsedMs = Math.max(0, nowMs - this.updatedAtMs);
    this.tokens = Math.min(this.burst, this.tokens + (elapsedMs * this.ratePerSec) / 1000);
    this.updatedAtMs = nowMs;
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
