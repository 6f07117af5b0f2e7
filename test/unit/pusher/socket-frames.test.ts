import { describe, expect, it } from "vitest";
import { channelEvent, readPusherFrame } from "../../../src/adapters/pusher/socket-frames.js";

describe("Pusher client frames", () => {
  it("reads each event the endpoint takes, with data as an object or as JSON text", () => {
    expect(readPusherFrame('{"event":"pusher:ping","data":{}}')).toEqual({ ok: true, frame: { event: "pusher:ping" } });
    expect(readPusherFrame('{"event":"pusher:subscribe","data":{"channel":"private-user.a","auth":"k:s"}}')).toEqual({
      ok: true,
      frame: { event: "pusher:subscribe", data: { channel: "private-user.a", auth: "k:s" } },
    });
    expect(readPusherFrame('{"event":"pusher:subscribe","data":"{\\"channel\\":\\"post.1\\"}"}')).toEqual({ ok: true, frame: { event: "pusher:subscribe", data: { channel: "post.1" } } });
    expect(readPusherFrame('{"event":"pusher:unsubscribe","data":{"channel":"post.1"}}')).toEqual({ ok: true, frame: { event: "pusher:unsubscribe", channel: "post.1" } });
    expect(readPusherFrame('{"event":"pusher:signin","data":{"auth":"k:s","user_data":"{}"}}')).toEqual({ ok: true, frame: { event: "pusher:signin", data: { auth: "k:s", user_data: "{}" } } });
    // A client event's data is kept as sent: a string stays a string.
    expect(readPusherFrame('{"event":"client-x","channel":"private-user.a","data":"{\\"a\\":1}"}')).toEqual({
      ok: true,
      frame: { event: "client", name: "client-x", channel: "private-user.a", data: '{"a":1}' },
    });
  });

  it("refuses what is not a frame of the protocol, with a message", () => {
    const refused = (text: string) => {
      const read = readPusherFrame(text);
      return read.ok ? "accepted" : read.message;
    };
    expect(refused("{")).toBe("frame is not valid JSON");
    expect(refused("[1]")).toContain("JSON object");
    expect(refused('{"data":{}}')).toBe("event must be a string");
    expect(refused('{"event":"pusher:nope"}')).toContain('unknown event "pusher:nope"');
    expect(refused('{"event":"pusher:subscribe","data":{"channel":1}}')).toContain("pusher:subscribe");
    expect(refused('{"event":"pusher:subscribe","data":{"channel":"post.1","auth":5}}')).toContain("auth must be a string");
    expect(refused('{"event":"pusher:signin","data":{"auth":"k:s"}}')).toContain('"user_data"');
    expect(refused('{"event":"client-x","data":{}}')).toContain("channel must be a string");
  });
});

describe("Pusher channel events", () => {
  it("write data as JSON text, a string as it is, and user_id only when given", () => {
    expect(JSON.parse(channelEvent("post.1", "said", { a: [1, "b"] }))).toEqual({ event: "said", channel: "post.1", data: '{"a":[1,"b"]}' });
    expect(JSON.parse(channelEvent("post.1", "said", "plain text"))).toEqual({ event: "said", channel: "post.1", data: "plain text" });
    expect(JSON.parse(channelEvent("presence-room.1", "client-x", null, "ada"))).toEqual({ event: "client-x", channel: "presence-room.1", data: "null", user_id: "ada" });
  });
});
