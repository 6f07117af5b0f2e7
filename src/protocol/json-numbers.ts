/**
 * True when `value` holds a number JSON cannot carry (±Infinity, NaN), at any
 * depth. JSON.parse reads a literal beyond the double range (`1e400`) as
 * Infinity and JSON.stringify writes Infinity as `null`, so such data would
 * reach subscribers as another value than the one published: it is refused
 * where JSON text enters instead. Iterative, like `exceedsDepth`, so no
 * nesting overflows the stack; only plain arrays and objects are walked.
 */
export function holdsNonFiniteNumber(value: unknown): boolean {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const next = pending.pop();
    if (typeof next === "number") {
      if (!Number.isFinite(next)) return true;
    } else if (typeof next === "object" && next !== null) {
      for (const child of Array.isArray(next) ? next : Object.values(next)) pending.push(child);
    }
  }
  return false;
}

/** The message every path answers for such data. */
export const NON_FINITE_MESSAGE = "data holds a number beyond the range of a double (such as 1e400), which JSON cannot carry";
