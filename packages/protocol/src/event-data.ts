/**
 * The rules every event's `data` is held to on every path it enters by
 * (WebSocket and HTTP publish, the broker; the publisher SDK checks depth on
 * what it serializes), beyond being JSON.
 */

/**
 * Most levels of arrays and objects `data` may nest (`{}` and `[]` are one
 * level, a scalar none). Why: serializing (JSON.stringify, PostgreSQL's
 * jsonb) recurses once per level, so data nested thousands deep (a 20 KB
 * frame is enough) overflows the stack where it is written out. 64 is far
 * beyond what real payloads use.
 */
export const MAX_DATA_DEPTH = 64;

/**
 * What is wrong with a value as event data. `too_deep`: over the depth limit.
 * `non_finite`: it holds ±Infinity or NaN — JSON.parse reads a literal beyond
 * the double range (`1e400`) as Infinity and JSON.stringify writes it as
 * `null`, so such data would reach subscribers as another value than the one
 * published.
 */
export type EventDataProblem = "too_deep" | "non_finite";

/**
 * The problem with `value` as event data, or undefined when it has none; a
 * value too deep is `too_deep` whatever else it holds. One iterative walk,
 * never recursive, so no nesting overflows the check itself; it stops at the
 * first level too deep. Meant for JSON values (parsed or about to be
 * serialized): only plain arrays and objects' own enumerable values are walked.
 */
export function eventDataProblem(value: unknown, maxDepth: number = MAX_DATA_DEPTH): EventDataProblem | undefined {
  let nonFinite = false;
  const pending: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (typeof next.value === "number") {
      nonFinite ||= !Number.isFinite(next.value);
      continue;
    }
    if (typeof next.value !== "object" || next.value === null) continue;
    const depth = next.depth + 1;
    if (depth > maxDepth) return "too_deep";
    const children: unknown[] = Array.isArray(next.value) ? next.value : Object.values(next.value);
    for (const child of children) {
      if (typeof child === "number") nonFinite ||= !Number.isFinite(child);
      else if (typeof child === "object" && child !== null) pending.push({ value: child, depth });
    }
  }
  return nonFinite ? "non_finite" : undefined;
}

/** The message every path answers for the problem. */
export function eventDataMessage(problem: EventDataProblem, maxDepth: number = MAX_DATA_DEPTH): string {
  return problem === "too_deep"
    ? `data nests arrays/objects more than ${maxDepth} levels deep`
    : "data holds a number beyond the range of a double (such as 1e400), which JSON cannot carry";
}
