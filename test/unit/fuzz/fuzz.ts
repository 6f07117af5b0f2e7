import fc from "fast-check";

/**
 * Shared settings and arbitraries of the property-based fuzz tests.
 *
 * Runs are bounded and the seed is fixed, so CI runs the same cases every
 * time and a failure reproduces; fast-check prints the seed and the shrunk
 * counterexample's path on failure. `FUZZ_SEED=<n>` explores other cases.
 */
export const FUZZ_SEED = process.env.FUZZ_SEED === undefined ? 20_261_203 : Number(process.env.FUZZ_SEED);

export function runs(numRuns: number): fc.Parameters<unknown> {
  return { numRuns, seed: FUZZ_SEED };
}

/** Characters that break naive parsers: line breaks of every kind, NUL, lone surrogates, BOM, separators, wildcards. */
const HOSTILE_UNITS = ["\n", "\r", "\r\n", "\0", "\ud800", "\udfff", "\u2028", "\u2029", "\ufeff", "\u0085", ":", " ", ".", "*", "#", '"', "\\", "é", "😀", "a", "7", "-", "_"];

/** Any string: arbitrary UTF-16 (lone surrogates included), or one made of the hostile characters above. */
export const anyString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: fc.constantFrom(...HOSTILE_UNITS), maxLength: 40 }),
  fc.string({ maxLength: 40 }),
);

/** JSON values whose strings hold any unit, lone surrogates included. */
export const anyJsonValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ stringUnit: "binary", maxDepth: 4 }),
  fc.jsonValue({ stringUnit: fc.constantFrom(...HOSTILE_UNITS), maxDepth: 3 }),
);

/**
 * JSON number texts at the edges of what a double holds: out of range both
 * ways, -0, past 2^53, exponent forms. JSON.parse reads each; not all of them
 * survive JSON.stringify unchanged.
 */
export const edgeNumberText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("1e400", "-1e400", "1e309", "-0", "1e-400", "9007199254740993", "123456789012345678901234567890", "0.1e1", "2E+3", "1.7976931348623157e308"),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map(String),
);

/** A JSON value spelled as text, for inputs JSON.stringify cannot produce (`1e400`, `-0`, `{"__proto__": …}`). */
export class RawJson {
  constructor(readonly text: string) {}
}

/** JSON text of any shape whose numbers are often edge numbers, at any depth (`{"a":[1e400]}`), and whose keys may be `__proto__`. */
export const edgyJsonText: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    edgeNumberText,
    fc.jsonValue({ stringUnit: "binary", maxDepth: 0 }).map((scalar) => JSON.stringify(scalar)),
    fc.array(tie("value"), { maxLength: 4 }).map((items) => `[${items.join(",")}]`),
    fc
      .array(fc.tuple(fc.oneof(anyString, fc.constantFrom("__proto__", "constructor")), tie("value")), { maxLength: 4 })
      .map((members) => objectText(members.map(([key, text]) => [key, new RawJson(text)] as const))),
  ),
})).value;

/** A value for a field of a frame or an envelope: the right kind, the wrong kind, or an edge number. */
export const anyFieldValue: fc.Arbitrary<unknown> = fc.oneof(
  anyJsonValue,
  anyString,
  fc.integer(),
  fc.maxSafeInteger(),
  fc.constantFrom(-1, 0, 1, 1.5, Number.MAX_SAFE_INTEGER + 1, true, false, null, [], {}),
  edgeNumberText.map((text) => new RawJson(text)),
  edgyJsonText.map((text) => new RawJson(text)),
);

/** JSON text of an object from its entries, in order (so `__proto__` stays an ordinary key and raw values keep their spelling). */
export function objectText(entries: ReadonlyArray<readonly [string, unknown]>): string {
  const members = entries.map(([key, value]) => `${JSON.stringify(key)}:${value instanceof RawJson ? value.text : JSON.stringify(value)}`);
  return `{${members.join(",")}}`;
}

type Mutation =
  | { kind: "drop"; key: string }
  | { kind: "set"; key: string; value: unknown }
  | { kind: "add"; key: string; value: unknown };

/**
 * The JSON text of `base` after 0–3 random mutations: a field dropped, a
 * field given any value (wrong types included), an extra field added.
 * `base` is the JSON form of a valid input, so the result starts near the
 * accepted region and walks out of it.
 */
export function mutatedObjectText(base: Record<string, unknown>): fc.Arbitrary<string> {
  const keys = Object.keys(base);
  const someKey = fc.constantFrom(...keys, "op", "ref", "id", "type", "data", "seq", "__proto__", "constructor");
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    someKey.map((key) => ({ kind: "drop" as const, key })),
    // Mostly fields the input has: a wrong value where a right one was is the likeliest bug.
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("set" as const), key: fc.constantFrom(...keys), value: anyFieldValue }) },
    fc.record({ kind: fc.constant("set" as const), key: someKey, value: anyFieldValue }),
    fc.record({ kind: fc.constant("add" as const), key: anyString, value: anyFieldValue }),
  );
  return fc.array(mutation, { maxLength: 3 }).map((mutations) => {
    const entries: Array<[string, unknown]> = Object.entries(base);
    for (const change of mutations) {
      const at = entries.findIndex(([key]) => key === change.key);
      if (change.kind === "drop") {
        if (at >= 0) entries.splice(at, 1);
      } else if (change.kind === "set" && at >= 0) {
        entries[at] = [change.key, change.value];
      } else {
        entries.push([change.key, change.value]);
      }
    }
    return objectText(entries);
  });
}

/** JSON text of `levels` nested arrays/objects around a scalar (JSON.stringify itself overflows on deep values). */
export function nestedJsonText(levels: number): string {
  const open = Array.from({ length: levels }, (_, level) => (level % 2 === 0 ? "[" : '{"a":'));
  return open.join("") + "1" + open.reverse().map((text) => (text === "[" ? "]" : "}")).join("");
}

/** Any text a peer could send as a JSON document: arbitrary strings, JSON of any shape, deep nesting, edge numbers. */
export const anyJsonText: fc.Arbitrary<string> = fc.oneof(
  anyString,
  fc.json({ stringUnit: "binary", maxDepth: 5 }),
  edgyJsonText,
  fc.integer({ min: 1, max: 5_000 }).map(nestedJsonText),
  edgeNumberText,
  fc.string({ unit: fc.constantFrom("[", "]", "{", "}", '"', ":", ",", "1", "e", "-", "\\u", "d800", " "), maxLength: 60 }),
);

/**
 * `value` with every -0 turned into 0. JSON.parse reads `-0` as -0 and
 * JSON.stringify writes it as `0`; both are the same number to every reader
 * of this protocol (JavaScript's `===`, PostgreSQL's jsonb), so round trips
 * compare through this. Nothing else is normalized.
 */
export function withoutNegativeZero(value: unknown): unknown {
  if (Object.is(value, -0)) return 0;
  if (Array.isArray(value)) return value.map(withoutNegativeZero);
  if (typeof value !== "object" || value === null) return value;
  // fromEntries keeps `__proto__` an own key, as JSON.parse made it.
  return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, withoutNegativeZero(child)]));
}
