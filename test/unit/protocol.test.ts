import { describe, expect, it } from "vitest";
import { parseChannel, parseRoutingKey, routingPrefix } from "../../src/protocol/channel.js";
import { decodeEnvelope } from "../../src/protocol/envelope.js";
import { parseClientFrame } from "../../src/protocol/frames.js";

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
    expect(parseClientFrame('{"op":"ping"}').ok).toBe(true);
    expect(parseClientFrame('{"op":"publish","channel":"room:7","type":"t","data":null}').ok).toBe(true);
  });

  it("reports invalid JSON, unknown ops and bad fields, echoing a valid ref", () => {
    expect(parseClientFrame("{nope")).toMatchObject({ ok: false, ref: undefined });
    expect(parseClientFrame('{"op":"dance","ref":9}')).toMatchObject({ ok: false, ref: 9 });
    expect(parseClientFrame('{"op":"subscribe","ref":2}')).toMatchObject({ ok: false, ref: 2 });
    expect(parseClientFrame('{"op":"publish","ref":3,"channel":"room:7","type":"t"}')).toMatchObject({ ok: false, ref: 3, message: expect.stringContaining("data") });
    expect(parseClientFrame('{"op":"status","users":' + JSON.stringify(Array(101).fill("u")) + "}").ok).toBe(false);
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
});
