import { describe, expect, it } from "vitest";
import { backoffCeilingsMs, equalJitterDelayMs } from "@sobranie/protocol/runtime/backoff";

describe("equal-jitter backoff and its steps", () => {
  const options = { initialDelayMs: 1_000, maxDelayMs: 60_000 };

  it("lists every step's ceiling, doubling from the initial delay and ending with the maximum", () => {
    expect(backoffCeilingsMs(options)).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000]);
    expect(backoffCeilingsMs({ initialDelayMs: 500, maxDelayMs: 500 })).toEqual([500]);
  });

  it("draws from half a step to a whole one, so a retry never comes back at once and stays within its step's queue", () => {
    expect(equalJitterDelayMs(options, 0, () => 0)).toBe(500);
    expect(equalJitterDelayMs(options, 0, () => 0.999_999)).toBe(999);
    expect(equalJitterDelayMs(options, 3, () => 0)).toBe(4_000);
    expect(equalJitterDelayMs(options, 30, () => 0.5)).toBe(45_000);
    for (let attempt = 0; attempt < 10; attempt++) {
      const delay = equalJitterDelayMs(options, attempt, () => 0.5);
      const step = backoffCeilingsMs(options).find((ceiling) => ceiling >= delay);
      expect(step).toBe(Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** attempt));
    }
  });
});
