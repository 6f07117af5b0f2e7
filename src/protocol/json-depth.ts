/**
 * Most levels of arrays and objects an event's `data` may nest (`{}` and `[]`
 * are one level, a scalar none). The same rule holds on every path an event
 * enters by (WebSocket and HTTP publish, the broker, the publisher SDK).
 *
 * Why: serializing (JSON.stringify, PostgreSQL's jsonb) recurses once per
 * level, so data nested thousands deep (a 20 KB frame is enough) overflows
 * the stack where it is written out. 64 is far beyond what real payloads use.
 */
export const MAX_DATA_DEPTH = 64;

/**
 * True when `value` nests arrays/objects more than `maxDepth` levels deep.
 * Iterative, never recursive, so the check itself cannot overflow; it stops
 * at the first level too deep. Meant for JSON values (parsed or about to be
 * serialized): only plain arrays and objects' own enumerable values are walked.
 */
export function exceedsDepth(value: unknown, maxDepth: number = MAX_DATA_DEPTH): boolean {
  const pending: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (typeof next.value !== "object" || next.value === null) continue;
    const depth = next.depth + 1;
    if (depth > maxDepth) return true;
    const children: unknown[] = Array.isArray(next.value) ? next.value : Object.values(next.value);
    for (const child of children) {
      if (typeof child === "object" && child !== null) pending.push({ value: child, depth });
    }
  }
  return false;
}

/** The message every path answers for data nested too deep. */
export function tooDeepMessage(maxDepth: number = MAX_DATA_DEPTH): string {
  return `data nests arrays/objects more than ${maxDepth} levels deep`;
}
