import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MAX_TIMER_MS, systemClock } from "@sobranie/protocol/runtime/clock";

describe("systemClock.setTimeout", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("fires a delay past 2^31−1 ms after that delay, not at once", () => {
    const fired = vi.fn();
    const sixtyDaysMs = 60 * 86_400_000;
    systemClock.setTimeout(fired, sixtyDaysMs);
    vi.advanceTimersByTime(MAX_TIMER_MS + 1_000);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(sixtyDaysMs - MAX_TIMER_MS - 1_001);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledTimes(1);
  });

  it("cancels a long wait in any of its steps", () => {
    const fired = vi.fn();
    const timer = systemClock.setTimeout(fired, 3 * MAX_TIMER_MS);
    vi.advanceTimersByTime(MAX_TIMER_MS + 5);
    timer.cancel();
    vi.advanceTimersByTime(3 * MAX_TIMER_MS);
    expect(fired).not.toHaveBeenCalled();
  });
});
