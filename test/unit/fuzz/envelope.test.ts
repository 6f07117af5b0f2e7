import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeEnvelope, encodeEnvelope, MAX_ENVELOPE_BYTES, type Envelope, type EnvelopeProperties } from "@sobranie/protocol/envelope";
import { MAX_DATA_DEPTH } from "@sobranie/protocol/event-data";
import { anyJsonText, anyJsonValue, anyString, mutatedObjectText, nestedJsonText, runs, withoutNegativeZero } from "./fuzz.js";

const utf8 = new TextEncoder();
const fallbackId = () => "fallback";
const stringUpTo = (max: number) => anyString.filter((text) => text.length <= max);

/** Event types as docs/protocol.md §3.1 describes them: 1–8 dot-separated words of [A-Za-z0-9_-]. */
const eventType = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$/);
/** Instants as `Date#toISOString()` writes them (what every publisher path in this repo sends), years 0000–9999. */
const isoInstant = fc.integer({ min: Date.parse("0000-01-01T00:00:00Z"), max: Date.parse("9999-12-31T23:59:59.999Z") }).map((ms) => new Date(ms).toISOString());
/** ISO 8601 timestamps in the other spellings the envelope takes: space separator, 0–9 fraction digits, offsets Z, ±hh:mm or ±hhmm. */
const isoSpelling = fc.stringMatching(/^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])[T ]([01]\d|2[0-3])(:[0-5]\d){2}(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):?[0-5]\d)$/);
/** Spellings the ISO grammar allows but Date.parse cannot read (hour-only offsets, a space before the offset): refused, not accepted without an instant. */
const unreadableSpelling = fc.stringMatching(/^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])T([01]\d|2[0-3])(:[0-5]\d){2}(\.\d{1,9})?([+-]([01]\d|2[0-3])| [+-]([01]\d|2[0-3]):?[0-5]\d)$/);

/** The body of a valid publish; `id` is only advised, so some have none. */
const validBody = fc.record(
  {
    id: stringUpTo(64).filter((id) => id.length > 0),
    type: eventType,
    data: fc.oneof(anyJsonValue, fc.constant(JSON.parse(nestedJsonText(MAX_DATA_DEPTH)) as unknown)),
    occurredAt: fc.oneof(isoInstant, isoSpelling),
    user: stringUpTo(128),
    seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  },
  { requiredKeys: ["type", "data"] },
);
const validEnvelope: fc.Arbitrary<Envelope> = validBody.filter((body): body is Envelope => body.id !== undefined);

const properties: fc.Arbitrary<EnvelopeProperties> = fc.record(
  { messageId: fc.oneof(anyString, fc.constant(""), fc.string({ minLength: 60, maxLength: 80 })), timestampMs: fc.integer({ min: 0, max: 4_102_444_800_000 }) },
  { requiredKeys: [] },
);

/** Bodies a broker could hand over: any bytes, any JSON, valid envelopes mutated, and their UTF-8 cut anywhere. */
const anyBody: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  anyJsonText.map((text) => utf8.encode(text)),
  validBody.map((body) => utf8.encode(JSON.stringify(body))),
  fc.tuple(validBody, unreadableSpelling).map(([body, occurredAt]) => utf8.encode(JSON.stringify({ ...body, occurredAt }))),
  validBody.chain((body) => mutatedObjectText(body)).map((text) => utf8.encode(text)),
  fc
    .tuple(validBody, fc.nat())
    .map(([body, cut]) => {
      const bytes = utf8.encode(JSON.stringify(body));
      return bytes.slice(0, cut % (bytes.length + 1));
    }),
);

describe("broker envelope decoder (property)", () => {
  it("never throws: any body is an envelope or a refusal with a reason", () => {
    fc.assert(
      fc.property(anyBody, properties, (body, props) => {
        const decoded = decodeEnvelope(body, props, fallbackId);
        if (!decoded.ok) expect(["too_large", "not_json", "invalid_envelope", "too_deep"]).toContain(decoded.reason);
      }),
      runs(2_000),
    );
  });

  it("refuses any body over the limit as too_large before reading it", () => {
    fc.assert(
      fc.property(fc.integer({ min: MAX_ENVELOPE_BYTES + 1, max: MAX_ENVELOPE_BYTES + 4_096 }), fc.integer({ min: 0, max: 255 }), (size, fill) => {
        expect(decodeEnvelope(new Uint8Array(size).fill(fill), {}, fallbackId)).toMatchObject({ ok: false, reason: "too_large" });
      }),
      runs(50),
    );
  });

  it("decodes every valid envelope it encodes as itself, publish time from the properties or occurredAt", () => {
    fc.assert(
      fc.property(validEnvelope, properties, (envelope, props) => {
        const decoded = decodeEnvelope(utf8.encode(encodeEnvelope(envelope)), props, fallbackId);
        const occurredMs = envelope.occurredAt === undefined ? undefined : Date.parse(envelope.occurredAt);
        expect(withoutNegativeZero(decoded)).toEqual(withoutNegativeZero({ ok: true, envelope, publishedAtMs: props.timestampMs ?? occurredMs }));
      }),
      runs(1_000),
    );
  });

  it("accepts only what it can re-encode: encode → decode of an accepted envelope is the same decoded envelope", () => {
    fc.assert(
      fc.property(anyBody, properties, (body, props) => {
        const first = decodeEnvelope(body, props, fallbackId);
        if (!first.ok) return;
        expect(withoutNegativeZero(decodeEnvelope(utf8.encode(encodeEnvelope(first.envelope)), props, fallbackId))).toEqual(withoutNegativeZero(first));
      }),
      runs(2_000),
    );
  });

  it("gives every accepted envelope an instant the rest of the pipeline can read: occurredAt parses, publish time is finite", () => {
    fc.assert(
      fc.property(anyBody, properties, (body, props) => {
        const decoded = decodeEnvelope(body, props, fallbackId);
        if (!decoded.ok) return;
        if (decoded.envelope.occurredAt !== undefined) expect(Date.parse(decoded.envelope.occurredAt)).not.toBeNaN();
        if (decoded.publishedAtMs !== undefined) expect(Number.isFinite(decoded.publishedAtMs)).toBe(true);
      }),
      runs(2_000),
    );
  });
});
