import { describe, expect, it } from "vitest";
import type { ResponseStream } from "../../src/core/ports/edge.js";
import { SseMessage, parseLastEventId, sseCloseMessage, sseDataLines, sseEventName } from "@sobranie/protocol/sse";
import { SseSessionSocket, SseTopics } from "../../src/http/sse-session-socket.js";
import { CloseCode } from "@sobranie/protocol/codes";

/** The fields of one SSE message as a conforming parser would read them. */
function fields(text: string): Array<[string, string]> {
  expect(text.endsWith("\n\n")).toBe(true);
  return text
    .slice(0, -2)
    .split(/\r\n|\r|\n/)
    .map((line) => {
      const colon = line.indexOf(":");
      return [line.slice(0, colon), line.slice(colon + 1).replace(/^ /, "")] as [string, string];
    });
}

describe("SSE framing", () => {
  it("frames an event with its type, its seq as id, and the event frame as data", () => {
    const frame = { op: "event", channel: "room:7", id: "e1", seq: 42, type: "message.created", data: { text: "hi" }, ts: "t" };
    const message = new SseMessage(JSON.stringify(frame));
    expect(message.text(true)).toBe(`event: message.created\nid: 42\ndata: ${JSON.stringify(frame)}\n\n`);
    expect(message.text(false)).toBe(`event: message.created\ndata: ${JSON.stringify(frame)}\n\n`);
  });

  it("names control frames sobranie.<op> and never gives them an id", () => {
    const message = new SseMessage(JSON.stringify({ op: "ok", ref: 3, seq: 9 }));
    expect(fields(message.text(true))).toEqual([
      ["event", "sobranie.ok"],
      ["data", '{"op":"ok","ref":3,"seq":9}'],
    ]);
    expect(message.op).toBe("ok");
    expect(message.ref).toBe(3);
  });

  it("cannot be made to inject a field or a message through a CR or LF in the type", () => {
    for (const type of ["a\r\nid: 999", "a\nevent: x", "a\rdata: {}", "x\n\nevent: forged\ndata: {}"]) {
      const frame = { op: "event", channel: "room:7", id: "e", seq: 5, type, data: {}, ts: "t" };
      const parsed = fields(new SseMessage(JSON.stringify(frame)).text(true));
      expect(parsed.map(([name]) => name)).toEqual(["event", "id", "data"]);
      expect(parsed[0]![1]).not.toMatch(/[\r\n]/);
      expect(parsed[1]![1]).toBe("5");
      expect(JSON.parse(parsed[2]![1])).toEqual(frame);
    }
    expect(sseEventName({ op: "event", type: "evil\u2028name\u0000" })).toBe("evil_name_");
  });

  it("never writes a non-integer seq as an id", () => {
    for (const seq of ["7\nid: 8", 1.5, -1, "12"]) {
      const message = new SseMessage(JSON.stringify({ op: "event", channel: "room:7", id: "e", seq, type: "t", data: {}, ts: "t" }));
      expect(message.hasId).toBe(false);
      expect(fields(message.text(true)).map(([name]) => name)).toEqual(["event", "data"]);
    }
  });

  it("splits data with line breaks into one data: line each", () => {
    expect(sseDataLines("a\r\nb\nc\rd")).toBe("data: a\ndata: b\ndata: c\ndata: d\n");
  });

  it("accepts only a decimal seq as Last-Event-ID", () => {
    expect(parseLastEventId("123")).toBe(123);
    expect(parseLastEventId(undefined)).toBeUndefined();
    for (const bad of ["", "-1", "1e3", "abc", "12 ", "99999999999999999"]) expect(parseLastEventId(bad)).toBeUndefined();
  });

  it("ends a stream with a close message carrying the close code", () => {
    expect(fields(sseCloseMessage(4013, "send buffer over its limit"))).toEqual([
      ["event", "sobranie.close"],
      ["data", '{"op":"close","code":4013,"reason":"send buffer over its limit"}'],
    ]);
  });
});

/** A response stream stand-in: records writes; `accepting` decides what write() returns. */
class FakeResponse implements ResponseStream {
  written: string[] = [];
  ended = false;
  accepting = true;
  cork(callback: () => void): void {
    callback();
  }
  write(chunk: string): boolean {
    this.written.push(chunk);
    return this.accepting;
  }
  end(): void {
    this.ended = true;
  }
}

function socketOn(res: FakeResponse, topics = new SseTopics(), pendingRefs: number[] = []) {
  const closes: number[] = [];
  const socket = new SseSessionSocket({ stream: res, topics, pendingRefs, onClosed: (code) => closes.push(code) });
  return { socket, closes, topics };
}

const event = (seq: number) => JSON.stringify({ op: "event", channel: "room:1", id: `e${seq}`, seq, type: "t", data: {}, ts: "t" });

describe("SseSessionSocket", () => {
  it("holds id: lines back until every subscribe of the stream is answered", () => {
    const res = new FakeResponse();
    const { socket } = socketOn(res, undefined, [1, 2]);
    socket.send(JSON.stringify({ op: "ok", ref: 1 }));
    socket.send(event(10));
    socket.send(JSON.stringify({ op: "error", ref: 2, code: "forbidden", message: "no" }));
    socket.send(event(11));
    expect(res.written[1]).not.toContain("id:");
    expect(res.written[3]).toContain("id: 11\n");
  });

  it("gets topic events through the registry until it unsubscribes or closes", () => {
    const res = new FakeResponse();
    const { socket, topics, closes } = socketOn(res);
    socket.subscribe("room:1");
    expect(topics.publish("room:1", event(1))).toBe(1);
    socket.unsubscribe("room:1");
    expect(topics.publish("room:1", event(2))).toBe(0);
    socket.subscribe("room:1");
    socket.close(CloseCode.TokenExpired, "token expired");
    expect(topics.publish("room:1", event(3))).toBe(0);
    expect(res.ended).toBe(true);
    expect(res.written.at(-1)).toContain('"code":4001');
    expect(closes).toEqual([4001]);
    socket.send(event(4));
    socket.close(CloseCode.Normal, "again");
    expect(closes).toEqual([4001]);
  });

  it("estimates the send buffer from writes that found backpressure, and forgets it once a write goes through", () => {
    const res = new FakeResponse();
    const { socket } = socketOn(res);
    res.accepting = false;
    socket.send(event(1));
    socket.send(event(2));
    const buffered = socket.bufferedBytes();
    expect(buffered).toBeGreaterThan(2 * event(1).length);
    res.accepting = true;
    expect(socket.bufferedBytes()).toBe(0);
  });

  it("never touches the response after the client aborted", () => {
    const res = new FakeResponse();
    const { socket, closes } = socketOn(res);
    socket.aborted(CloseCode.Normal);
    const before = res.written.length;
    socket.send(event(1));
    expect(socket.keepAlive()).toBe(false);
    socket.close(CloseCode.TooSlow, "x");
    expect(res.written.length).toBe(before);
    expect(closes).toEqual([1000]);
  });
});
