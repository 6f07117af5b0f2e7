import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SseParser } from "@sobranie/client";
import { parseLastEventId, SSE_KEEPALIVE, SSE_PREAMBLE, SseMessage, sseCloseMessage } from "@sobranie/protocol/sse";
import { anyJsonValue, anyString, runs, withoutNegativeZero } from "./fuzz.js";

const utf8 = new TextEncoder();

/** A seq of any kind: durable (a safe integer ≥ 0) or something a frame could carry by mistake. */
const anySeq = fc.oneof(
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  fc.constantFrom(-1, 1.5, Number.MAX_SAFE_INTEGER + 2, 1e300, "12", "7\nid: 8", null),
);

type Frame = Record<string, unknown>;

/** Server frames with hostile contents: event types and texts with CR, LF, CRLF, NUL, lone surrogates; data of any JSON. */
const anyFrame: fc.Arbitrary<Frame> = fc.oneof(
  fc.record(
    { op: fc.constant("event"), channel: anyString, id: anyString, seq: anySeq, type: anyString, data: anyJsonValue, ts: anyString },
    { requiredKeys: ["op", "channel", "id", "type", "data", "ts"] },
  ),
  fc.record(
    { op: fc.oneof(fc.constantFrom("welcome", "ok", "error", "read", "reconnect", "gap", "unsubscribed"), anyString), ref: fc.integer(), message: anyString, seq: anySeq, data: anyJsonValue },
    { requiredKeys: ["op"] },
  ),
);

/** The frame's JSON as the server writes it, or spread over lines broken by LF, CR or CRLF (JSON allows them between tokens). */
const frameText = (frame: Frame): fc.Arbitrary<string> =>
  fc.oneof(
    fc.constant(JSON.stringify(frame)),
    // JSON.stringify escapes every line break inside strings, so each raw one it writes is whitespace between tokens.
    fc.constantFrom("\n", "\r", "\r\n").map((lineBreak) => JSON.stringify(frame, null, 1).replace(/\n/g, lineBreak)),
  );

/** The stream's bytes cut into chunks at arbitrary points (inside CRLF and inside UTF-8 sequences included). */
function chunks(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    pieces.push(bytes.slice(start, point));
    start = point;
  }
  return pieces;
}

/** The id: a stream gives an event frame: only a durable seq, and only when the stream asks for ids. */
function expectedId(frame: Frame, withId: boolean): string | undefined {
  return withId && frame.op === "event" && Number.isSafeInteger(frame.seq) && (frame.seq as number) >= 0 ? String(frame.seq) : undefined;
}

describe("SSE encoder through the SDK's parser (property)", () => {
  it("delivers every frame as sent, in order, with the last durable seq as its id, however the stream is cut", () => {
    const stream = fc.array(
      fc.record({ frame: anyFrame, withId: fc.boolean(), keepAliveAfter: fc.boolean() }).chain((message) => frameText(message.frame).map((text) => ({ ...message, text }))),
      { minLength: 1, maxLength: 6 },
    );
    fc.assert(
      // The server ends lines with LF; the stream is also read with CRLF or CR line ends, which any conforming SSE source may use.
      fc.property(stream, fc.array(fc.nat(), { maxLength: 8 }), fc.option(fc.stringMatching(/^\d{1,16}$/), { nil: undefined }), fc.constantFrom("\n", "\r\n", "\r"), (messages, cuts, lastEventId, lineEnd) => {
        const served = SSE_PREAMBLE + messages.map(({ text, withId, keepAliveAfter }) => new SseMessage(text).text(withId) + (keepAliveAfter ? SSE_KEEPALIVE : "")).join("");
        expect(served).not.toContain("\r");
        const text = served.replace(/\n/g, lineEnd);
        const received: Array<{ frame: unknown; id: string | undefined }> = [];
        const parser = new SseParser(lastEventId, (frame, id) => received.push({ frame, id }));
        for (const piece of chunks(utf8.encode(text), cuts)) parser.push(piece);

        let id = lastEventId;
        const expected = messages.map(({ frame, withId }) => {
          id = expectedId(frame, withId) ?? id;
          return { frame, id };
        });
        expect(withoutNegativeZero(received)).toEqual(withoutNegativeZero(expected));
        for (const [index, { frame }] of messages.entries()) {
          const seq = expectedId(frame, messages[index]!.withId);
          if (seq !== undefined) expect(parseLastEventId(seq)).toBe(frame.seq);
        }
      }),
      runs(1_500),
    );
  });

  it("ends a stream with a close message the SDK reads back as the close code and reason", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1000, max: 4999 }), anyString, (code, reason) => {
        const received: unknown[] = [];
        new SseParser(undefined, (frame) => received.push(frame)).push(utf8.encode(sseCloseMessage(code, reason)));
        expect(received).toEqual([{ op: "close", code, reason }]);
      }),
      runs(500),
    );
  });

  it("writes any text, JSON or not, as exactly one message whose fields carry no line break and whose data is the text", () => {
    fc.assert(
      fc.property(anyString, fc.boolean(), (text, withId) => {
        const message = new SseMessage(text).text(withId);
        expect(message.endsWith("\n\n")).toBe(true);
        const lines = message.slice(0, -2).split(/\r\n|\r|\n/);
        expect(lines).not.toContain("");
        expect(lines[0]).toMatch(/^event: [A-Za-z0-9_.:-]+$/);
        const data = lines.filter((line) => line.startsWith("data: ")).map((line) => line.slice("data: ".length));
        expect(lines.length - data.length).toBeLessThanOrEqual(2);
        if (lines.length - data.length === 2) expect(lines[1]).toMatch(/^id: \d+$/);
        expect(data.join("\n")).toBe(text.split(/\r\n|\r|\n/).join("\n"));
      }),
      runs(2_000),
    );
  });

  it("reads a Last-Event-ID only as a seq it wrote, and never throws on any header", () => {
    fc.assert(
      fc.property(fc.oneof(anyString, fc.stringMatching(/^\d{1,20}$/)), (header) => {
        const seq = parseLastEventId(header);
        if (seq !== undefined) {
          expect(Number.isSafeInteger(seq) && seq >= 0).toBe(true);
          expect(Number(header)).toBe(seq);
        }
      }),
      runs(1_000),
    );
  });
});
