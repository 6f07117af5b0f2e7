import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { exceedsDepth } from "../../../src/protocol/json-depth.js";
import { holdsNonFiniteNumber } from "../../../src/protocol/json-numbers.js";
import { anyJsonValue, edgyJsonText, runs } from "./fuzz.js";

/** Levels of arrays/objects, by the definition in json-depth.ts, recursively (the values here are shallow). */
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
  it("exceedsDepth(value, max) is exactly depth(value) > max", () => {
    fc.assert(
      fc.property(anyData, fc.integer({ min: 0, max: 6 }), (value, max) => {
        expect(exceedsDepth(value, max)).toBe(depth(value) > max);
      }),
      runs(1_000),
    );
  });

  it("holdsNonFiniteNumber finds a number beyond the double range at any depth, and only then", () => {
    fc.assert(
      fc.property(anyData, (value) => {
        expect(holdsNonFiniteNumber(value)).toBe(holdsNonFinite(value));
      }),
      runs(1_000),
    );
  });
});
