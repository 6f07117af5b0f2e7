import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseClientFrame, readClientFrame, type ClientFrame } from "@sobranie/protocol/frames";
import { MAX_DATA_DEPTH } from "@sobranie/protocol/event-data";
import { anyJsonText, anyJsonValue, anyString, mutatedObjectText, nestedJsonText, RawJson, objectText, runs, withoutNegativeZero } from "./fuzz.js";

/** A string of at most `max` UTF-16 units, any units. */
const stringUpTo = (max: number) => anyString.filter((text) => text.length <= max);
const ref = fc.option(fc.maxSafeInteger(), { nil: undefined });
const seq = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const userId = fc.stringMatching(/^[A-Za-z0-9_-]{1,128}$/);

/** Data of any shape within the depth limit, the limit itself included. */
const eventData = fc.oneof(anyJsonValue, fc.constant(JSON.parse(nestedJsonText(MAX_DATA_DEPTH)) as unknown));

/** Every client op with valid fields: what the protocol table of docs/protocol.md §4 lets a client send. */
const validFrame: fc.Arbitrary<ClientFrame> = fc.oneof(
  fc.record({ op: fc.constant("subscribe" as const), ref, channel: stringUpTo(200), since: fc.option(seq, { nil: undefined }), presence: fc.option(fc.boolean(), { nil: undefined }) }, { requiredKeys: ["op", "channel"] }),
  fc.record({ op: fc.constant("unsubscribe" as const), ref, channel: stringUpTo(200) }, { requiredKeys: ["op", "channel"] }),
  fc.record({ op: fc.constant("publish" as const), ref, channel: stringUpTo(200), type: stringUpTo(200), data: eventData }, { requiredKeys: ["op", "channel", "type", "data"] }),
  fc.record({ op: fc.constant("presence" as const), ref, channel: stringUpTo(200) }, { requiredKeys: ["op", "channel"] }),
  fc.record({ op: fc.constant("status" as const), ref, users: fc.array(userId, { maxLength: 100 }) }, { requiredKeys: ["op", "users"] }),
  fc.record({ op: fc.constant("read" as const), ref, channel: stringUpTo(200), upTo: seq }, { requiredKeys: ["op", "channel", "upTo"] }),
  fc.record({ op: fc.constant("ping" as const), ref }, { requiredKeys: ["op"] }),
  fc.record({ op: fc.constant("refresh" as const), ref, token: stringUpTo(16_384).filter((token) => token.length > 0) }, { requiredKeys: ["op", "token"] }),
) as fc.Arbitrary<ClientFrame>;

/** A `ref` of any kind: safe integers, other numbers (spelled in ways JSON.stringify never writes), any JSON. */
const anyRef = fc.oneof(fc.maxSafeInteger(), fc.integer(), fc.double(), anyJsonValue, fc.constantFrom("1e400", "-0", "9007199254740993", "1.0", "1e2").map((text) => new RawJson(text)));

/** Any frame text: garbage, JSON of any shape, and valid frames mutated field by field. */
const anyFrameText = fc.oneof(anyJsonText, validFrame.chain((frame) => mutatedObjectText(frame as Record<string, unknown>)));

describe("client frame decoder (property)", () => {
  it("never throws: any text is a frame or a refusal with a message", () => {
    fc.assert(
      fc.property(anyFrameText, (text) => {
        const parsed = parseClientFrame(text);
        if (!parsed.ok) expect(typeof parsed.message).toBe("string");
        else expect(typeof parsed.frame.op).toBe("string");
      }),
      runs(2_000),
    );
  });

  it("echoes the ref of any JSON object whose ref is a safe integer, and no other", () => {
    fc.assert(
      fc.property(anyRef, anyJsonValue, (refValue, rest) => {
        const text = objectText([["ref", refValue], ["op", rest]]);
        const read = readClientFrame(text);
        const json = JSON.parse(text) as { ref: unknown };
        expect(read).toMatchObject({ ok: true, ref: Number.isSafeInteger(json.ref) ? json.ref : undefined });
        const parsed = parseClientFrame(text);
        if (!parsed.ok) expect(parsed.ref).toBe(Number.isSafeInteger(json.ref) ? json.ref : undefined);
      }),
      runs(1_000),
    );
  });

  it("accepts every valid frame as itself", () => {
    fc.assert(
      fc.property(validFrame, (frame) => {
        expect(withoutNegativeZero(parseClientFrame(JSON.stringify(frame)))).toEqual(withoutNegativeZero({ ok: true, frame }));
      }),
      runs(1_000),
    );
  });

  it("re-encodes whatever it accepts to a frame that decodes to the same value", () => {
    fc.assert(
      fc.property(anyFrameText, (text) => {
        const first = parseClientFrame(text);
        if (!first.ok) return;
        expect(withoutNegativeZero(parseClientFrame(JSON.stringify(first.frame)))).toEqual(withoutNegativeZero(first));
      }),
      runs(2_000),
    );
  });
});

