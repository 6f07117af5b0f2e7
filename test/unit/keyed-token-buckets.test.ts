import { describe, expect, it } from "vitest";
import { KeyedTokenBuckets } from "../../src/core/rate-limit.js";

describe("KeyedTokenBuckets", () => {
  it("limits each key on its own", () => {
    const buckets = new KeyedTokenBuckets({ ratePerSec: 1, burst: 2, maxKeys: 10 });
    expect([buckets.take("a", 0).ok, buckets.take("a", 0).ok, buckets.take("a", 0)]).toEqual([true, true, { ok: false, retryAfterMs: 1000 }]);
    expect(buckets.take("b", 0).ok).toBe(true);
    expect(buckets.take("a", 1000).ok).toBe(true);
  });

  it("peeks without taking and without holding a bucket for a new key", () => {
    const buckets = new KeyedTokenBuckets({ ratePerSec: 1, burst: 1, maxKeys: 10 });
    expect(buckets.peek("a", 0)).toEqual({ ok: true });
    expect(buckets.size).toBe(0);
    buckets.take("a", 0);
    expect(buckets.peek("a", 500)).toEqual({ ok: false, retryAfterMs: 500 });
    expect(buckets.peek("a", 500)).toEqual({ ok: false, retryAfterMs: 500 });
  });

  it("holds at most maxKeys buckets however many keys a client invents", () => {
    const buckets = new KeyedTokenBuckets({ ratePerSec: 1, burst: 5, maxKeys: 100 });
    for (let i = 0; i < 100_000; i++) buckets.take(`key-${i}`, 0);
    expect(buckets.size).toBe(100);
    // The most recent keys are the ones kept: the last one is still limited.
    for (let i = 0; i < 4; i++) buckets.take("key-99999", 0);
    expect(buckets.take("key-99999", 0).ok).toBe(false);
  });

  it("forgets buckets that refilled, keeping the ones still in use", () => {
    const buckets = new KeyedTokenBuckets({ ratePerSec: 1, burst: 2, maxKeys: 100 });
    for (let i = 0; i < 50; i++) buckets.take(`idle-${i}`, 0);
    buckets.take("busy", 1_500);
    buckets.take("busy", 1_500);
    // At 2.5 s the idle buckets (1 token taken at 0) are full again; "busy" (2 taken at 1.5 s) is not.
    buckets.take("new", 2_500);
    expect(buckets.size).toBe(2);
    expect(buckets.take("busy", 2_500)).toEqual({ ok: true });
    expect(buckets.take("busy", 2_500).ok).toBe(false);
  });
});
