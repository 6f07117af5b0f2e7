import { describe, expect, it } from "vitest";
import { LateTick } from "@sobranie/protocol/runtime/late-tick";

describe("LateTick", () => {
  it("is late only when a run comes more than twice the interval after the previous one", () => {
    const tick = new LateTick(1_000, 0);
    expect(tick.late(1_000)).toBe(false);
    expect(tick.late(3_000)).toBe(false);
    expect(tick.late(5_001)).toBe(true);
    expect(tick.late(6_000)).toBe(false);
  });
});
