import { describe, expect, it } from "vitest";
import { AbuseStreak, TokenBucket } from "../../src/core/rate-limit.js";

describe("TokenBucket", () => {
  it("allows a burst, then refuses with the time until the next token", () => {
    const bucket = new TokenBucket(20, 40, 0);
    for (let i = 0; i < 40; i++) expect(bucket.take(0).ok).toBe(true);
    const refused = bucket.take(0);
    expect(refused).toEqual({ ok: false, retryAfterMs: 50 });
  });

  it("refills at the configured rate and never above the burst", () => {
    const bucket = new TokenBucket(10, 5, 0);
    for (let i = 0; i < 5; i++) bucket.take(0);
    expect(bucket.take(50).ok).toBe(false);
    expect(bucket.take(100).ok).toBe(true);
    let taken = 0;
    while (bucket.take(60_000).ok) taken++;
    expect(taken).toBe(5);
  });
});

describe("AbuseStreak", () => {
  it("fires only after refusals lasting the whole window", () => {
    const streak = new AbuseStreak(5_000);
    for (let t = 0; t < 5_000; t += 100) expect(streak.refused(t)).toBe(false);
    expect(streak.refused(5_000)).toBe(true);
  });

  it("restarts after the client stayed quiet for the reset time", () => {
    const streak = new AbuseStreak(5_000, 1_000);
    for (let t = 0; t <= 3_000; t += 100) streak.refused(t);
    // 1.1 s of quiet: a new streak starts at 4,100 and must last 5 s again.
    for (let t = 4_100; t < 9_100; t += 100) expect(streak.refused(t)).toBe(false);
    expect(streak.refused(9_100)).toBe(true);
  });
});
