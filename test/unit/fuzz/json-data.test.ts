import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { eventDataProblem } from "@sobranie/protocol/event-data";
import { anyJsonValue, edgyJsonText, runs } from "./fuzz.js";

/** Levels of arrays/objects, by the definition in event-data.ts, recursively (the values here are shallow). */
function depth(value: unknown): number {
  if (typeof value !== "object" || value === null) return 0;
  const children: unknown[] = Array.isArray(value) ? value : Object.values(value);
  return 1 + Math.max(0, ...children.map(depth));
}

function holdsNonFinite(value: unknown): boolean {
  if (typeof value === "number") return !Number.isFinite(value);
  if (typeof value !== "object" || value === null) return false;
  return (Array.isArray(value) ? value : Object.values(value)).some(holdsNonFinite);
}

const anyData = fc.oneof(anyJsonValue, edgyJsonText.map((text) => JSON.parse(text) as unknown));

describe("event data checks (property)", () => {
  it("eventDataProblem(value, max) is too_deep exactly when depth(value) > max, else non_finite exactly when it holds ±Infinity/NaN", () => {
    fc.assert(
      fc.property(anyData, fc.integer({ min: 0, max: 6 }), (value, max) => {
        const expected = depth(value) > max ? "too_deep" : holdsNonFinite(value) ? "non_finite" : undefined;
        expect(eventDataProblem(value, max)).toBe(expected);
      }),
      runs(1_000),
    );
  });

  it("finds a number beyond the double range at any depth within the limit, and only then", () => {
    fc.assert(
      fc.property(anyData, (value) => {
        expect(eventDataProblem(value, Number.MAX_SAFE_INTEGER) === "non_finite").toBe(holdsNonFinite(value));
      }),
      runs(1_000),
    );
  });
});
