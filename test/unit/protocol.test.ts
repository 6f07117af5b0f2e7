import { describe, expect, it } from "vitest";
import { parseChannel, parseRoutingKey, routingKey, routingPrefix } from "@sobranie/protocol/channel";
import { decodeEnvelope } from "@sobranie/protocol/envelope";
import { parseClientFrame } from "@sobranie/protocol/frames";
import { eventDataProblem, MAX_DATA_DEPTH } from "@sobranie/protocol/event-data";

const exceedsDepth = (value: unknown, maxDepth?: number): boolean => eventDataProblem(value, maxDepth) === "too_deep";
import { decodePresenceMessage } from "@sobranie/protocol/presence";

/** JSON text of `levels` nested arrays/objects, alternating (JSON.stringify itself overflows on deep values). */
function nestedJson(levels: number): string {
  const open = Array.from({ length: levels }, (_, level) => (level % 2 === 0 ? "[" : '{"a":'));
  return open.join("") + "1" + open.reverse().map((text) => (text === "[" ? "]" : "}")).join("");
}

describe("channel grammar", () => {
  it.each(["room:7", "user:42", "post:a_b-C", "x-1:Z"])("accepts %s", (text) => {
    expect(parseChannel(text)?.name).toBe(text);
  });

  it.each(["room.7:1", "room:7.1", "room:*", "room:#", "room:", ":7", "room 7:1", "Room:7", "room:7:8", "room", "room: 7", ""])(
    "rejects %j, which would become an AMQP wildcard or an empty part",
    (text) => {
      expect(parseChannel(text)).toBeUndefined();
    },
  );

  it("maps to the routing-key prefix and back", () => {
    const channel = parseChannel("room:7")!;
    expect(routingPrefix(channel)).toBe("room.7");
    expect(routingKey(channel, "message.created")).toBe("room.7.message.created");
    expect(parseRoutingKey("room.7.message.created")).toEqual({ channel, type: "message.created" });
    expect(parseRoutingKey("room.7")).toBeUndefined();
    expect(parseRoutingKey("room.7.")).toBeUndefined();
  });
});

describe("client frames", () => {
  it("parses each op", () => {
    expect(parseClientFrame('{"op":"subscribe","ref":1,"channel":"room:7","since":3}')).toEqual({
      ok: true,
      frame: { op: "subscribe", ref: 1, channel: "room:7", since: 3 },
    });
    expect(parseClientFrame('{"op":"subscribe","ref":1,"channel":"vip:7","token":"t.k.n"}')).toEqual({ ok: true, frame: { op: "subscribe", ref: 1, channel: "vip:7", token: "t.k.n" } });
    expect(parseClientFrame('{"op":"refresh","ref":2,"token":"t.k.n"}')).toEqual({ ok: true, frame: { op: "refresh", ref: 2, token: "t.k.n" } });
    expect(parseClientFrame('{"op":"refresh","ref":3,"channel":"vip:7","token":"t.k.n"}')).toEqual({ ok: true, frame: { op: "refresh", ref: 3, channel: "vip:7", token: "t.k.n" } });
    expect(parseClientFrame('{"op":"ping"}').ok).toBe(true);
    expect(parseClientFrame('{"op":"publish","channel":"room:7","type":"t","data":null}').ok).toBe(true);
  });

  it("reports invalid JSON, unknown ops and bad fields, echoing a valid ref", () => {
    expect(parseClientFrame("{nope")).toMatchObject({ ok: false, ref: undefined });
    expect(parseClientFrame('{"op":"dance","ref":9}')).toMatchObject({ ok: false, ref: 9 });
    expect(parseClientFrame('{"op":"subscribe","ref":2}')).toMatchObject({ ok: false, ref: 2 });
    expect(parseClientFrame('{"op":"subscribe","ref":4,"channel":"vip:7","token":""}')).toMatchObject({ ok: false, ref: 4 });
    expect(parseClientFrame('{"op":"refresh","ref":5,"channel":"vip:7"}')).toMatchObject({ ok: false, ref: 5, message: expect.stringContaining("token") });
    expect(parseClientFrame('{"op":"publish","ref":3,"channel":"room:7","type":"t"}')).toMatchObject({ ok: false, ref: 3, message: expect.stringContaining("data") });
    expect(parseClientFrame('{"op":"status","users":' + JSON.stringify(Array(101).fill("u")) + "}").ok).toBe(false);
  });
});

describe("data numbers", () => {
  it("refuses a publish frame whose data holds a number beyond the double range, naming the field", () => {
    expect(parseClientFrame('{"op":"publish","ref":4,"channel":"room:7","type":"t","data":{"a":[1e400]}}')).toEqual({
      ok: false,
      ref: 4,
      message: expect.stringMatching(/1e400[\s\S]*at data/),
    });
    expect(parseClientFrame('{"op":"publish","channel":"room:7","type":"t","data":{"a":[1e308, -0]}}').ok).toBe(true);
  });
});

describe("data depth", () => {
  it("counts levels of arrays and objects, scalars none, up to the limit and not beyond", () => {
    expect(MAX_DATA_DEPTH).toBe(64);
    for (const scalar of [1, "x", null, true]) expect(exceedsDepth(scalar, 0)).toBe(false);
    expect(exceedsDepth({}, 0)).toBe(true);
    expect(exceedsDepth({ a: [1, { b: [] }] }, 4)).toBe(false);
    expect(exceedsDepth({ a: [1, { b: [] }] }, 3)).toBe(true);
    expect(exceedsDepth([[], [[[]]], []], 4)).toBe(false);
    expect(exceedsDepth([[], [[[[]]]], []], 4)).toBe(true);
    expect(exceedsDepth(JSON.parse(nestedJson(MAX_DATA_DEPTH)))).toBe(false);
    expect(exceedsDepth(JSON.parse(nestedJson(MAX_DATA_DEPTH + 1)))).toBe(true);
  });

  it("checks data nested far deeper than the stack allows without overflowing", () => {
    expect(exceedsDepth(JSON.parse(nestedJson(200_000)))).toBe(true);
  });

  it("refuses a publish frame whose data is too deep as a bad field, naming it", () => {
    const frame = (levels: number) => `{"op":"publish","ref":4,"channel":"room:7","type":"t","data":${nestedJson(levels)}}`;
    expect(parseClientFrame(frame(MAX_DATA_DEPTH)).ok).toBe(true);
    expect(parseClientFrame(frame(10_000))).toEqual({
      ok: false,
      ref: 4,
      message: expect.stringMatching(/more than 64 levels deep[\s\S]*at data/),
    });
  });
});

describe("broker envelope", () => {
  const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  const fallbackId = () => "generated";

  it("accepts a minimal envelope and takes the id from message_id when the body has none", () => {
    const decoded = decodeEnvelope(encode({ type: "a.b", data: {} }), { messageId: "m1" }, fallbackId);
    expect(decoded).toMatchObject({ ok: true, envelope: { id: "m1", type: "a.b" } });
  });

  it("rejects bodies that are not JSON, miss data, or have a bad type", () => {
    expect(decodeEnvelope(new TextEncoder().encode("not json"), {}, fallbackId)).toMatchObject({ ok: false, reason: "not_json" });
    expect(decodeEnvelope(encode({ type: "a" }), {}, fallbackId)).toMatchObject({ ok: false, reason: "invalid_envelope" });
    expect(decodeEnvelope(encode({ type: "a.*", data: 1 }), {}, fallbackId)).toMatchObject({ ok: false, reason: "invalid_envelope" });
    expect(decodeEnvelope(new Uint8Array([0xff, 0xfe]), {}, fallbackId)).toMatchObject({ ok: false, reason: "not_json" });
    expect(decodeEnvelope(new Uint8Array(65_537), {}, fallbackId)).toMatchObject({ ok: false, reason: "too_large" });
  });

  it("takes an empty message_id as no id, since a body id must not be empty", () => {
    expect(decodeEnvelope(encode({ type: "a", data: {} }), { messageId: "" }, fallbackId)).toMatchObject({ ok: true, envelope: { id: "generated" } });
  });

  it("refuses an occurredAt in an ISO 8601 spelling Date.parse cannot read, and takes the ones it can", () => {
    for (const occurredAt of ["2026-01-01T00:00:00+01", "2026-01-01T00:00:00 +01:00"]) {
      expect(decodeEnvelope(encode({ type: "a", data: {}, occurredAt }), {}, fallbackId)).toMatchObject({ ok: false, reason: "invalid_envelope" });
    }
    for (const occurredAt of ["2026-01-01T00:00:00+01:00", "2026-01-01T00:00:00+0100", "2026-01-01 00:00:00.5Z"]) {
      const decoded = decodeEnvelope(encode({ type: "a", data: {}, occurredAt }), {}, fallbackId);
      expect(decoded.ok && Number.isFinite(decoded.publishedAtMs)).toBe(true);
    }
  });

  it("refuses data holding a number beyond the double range, which would go on as null", () => {
    const body = new TextEncoder().encode('{"type":"a","data":{"n":[1, -1e400]}}');
    expect(decodeEnvelope(body, {}, fallbackId)).toMatchObject({ ok: false, reason: "invalid_envelope", message: expect.stringContaining("1e400") });
    expect(decodeEnvelope(new TextEncoder().encode('{"type":"a","data":{"n":1.7976931348623157e308}}'), {}, fallbackId)).toMatchObject({ ok: true });
  });

  it("rejects data nested over 64 levels as too_deep, and takes 64", () => {
    const body = (levels: number) => new TextEncoder().encode(`{"type":"a","data":${nestedJson(levels)}}`);
    expect(decodeEnvelope(body(64), {}, fallbackId)).toMatchObject({ ok: true });
    expect(decodeEnvelope(body(65), {}, fallbackId)).toMatchObject({ ok: false, reason: "too_deep" });
    expect(decodeEnvelope(body(10_000), {}, fallbackId)).toMatchObject({ ok: false, reason: "too_deep", message: expect.stringContaining("64 levels") });
  });
});

describe("user ids", () => {
  it("takes the channel-id grammar in status frames and names a bad entry by position", () => {
    expect(parseClientFrame('{"op":"status","users":["bob","A_z-9"]}').ok).toBe(true);
    for (const bad of ["a\\u0000b", "a.b", "a b", "", "x".repeat(129)]) {
      const parsed = parseClientFrame(`{"op":"status","ref":5,"users":["bob","${bad}"]}`);
      expect(parsed).toEqual({ ok: false, ref: 5, message: expect.stringContaining("users.1") });
    }
  });

  it("drops presence messages from the bus whose user is outside the grammar", () => {
    const delta = (user: string) =>
      JSON.stringify({ kind: "delta", node: "n", incarnation: "i", atMs: 1, seq: 1, changes: [{ op: "add", key: "", user }] });
    expect(decodePresenceMessage(delta("alice"))).toBeDefined();
    for (const bad of ["a\u0000b", "a.b", "a*"]) expect(decodePresenceMessage(delta(bad))).toBeUndefined();
  });
});
