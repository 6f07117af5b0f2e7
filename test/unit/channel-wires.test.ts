import { describe, expect, it } from "vitest";
import { ChannelWires, type ChannelWire } from "../../src/core/channel-wires.js";
import type { LocalFanout } from "../../src/core/ports/session-socket.js";
import { encodeServerFrame, type ServerFrame } from "@sobranie/protocol/frames";

/** The runtime's topics as a record of what each topic was sent, with fixed subscriber counts. */
function recordingFanout(subscribers: Record<string, number>): LocalFanout & { sent: Array<[string, string]> } {
  const sent: Array<[string, string]> = [];
  return {
    sent,
    publish(topic, text) {
      sent.push([topic, text]);
      return subscribers[topic] ?? 0;
    },
    subscribers: (topic) => subscribers[topic] ?? 0,
  };
}

/** A wire that writes an event as `<topic>:<type>:<user>` and has no other frame. */
function wire(topic: string): ChannelWire & { encoded: number } {
  const made = {
    topic,
    encoded: 0,
    encode(frame: ServerFrame, origin: { user?: string | undefined } | undefined) {
      if (frame.op !== "event") return undefined;
      made.encoded += 1;
      return `${topic}:${frame.type}:${origin?.user ?? "-"}`;
    },
  };
  return made;
}

const event = encodeServerFrame({ op: "event", channel: "room:1", id: "e1", type: "said", data: {}, ts: "2026-01-01T00:00:00.000Z" });

describe("ChannelWires", () => {
  it("publishes a channel's frame natively, and once per attached wire while it has users", () => {
    const native = recordingFanout({ "room:1": 2, "w/a": 3 });
    const wires = new ChannelWires(native);
    const a = wire("w/a");
    wires.attach("room:1", a);
    wires.attach("room:1", a);
    expect(wires.publish("room:1", event, { user: "ada" })).toBe(5);
    expect(native.sent).toEqual([["room:1", event], ["w/a", "w/a:said:ada"]]);
    expect(a.encoded).toBe(1);
    expect(wires.subscribers("room:1")).toBe(5);
    // Two users attached it: the first detach leaves it attached.
    wires.detach("room:1", "w/a");
    wires.publish("room:1", event);
    expect(native.sent).toHaveLength(4);
    wires.detach("room:1", "w/a");
    wires.publish("room:1", event);
    expect(native.sent.slice(4)).toEqual([["room:1", event]]);
  });

  it("leaves out frames a wire has no encoding for, and touches no wire of another channel", () => {
    const native = recordingFanout({});
    const wires = new ChannelWires(native);
    wires.attach("room:2", wire("w/b"));
    wires.publish("room:1", event);
    wires.publish("room:2", encodeServerFrame({ op: "gap", channel: "room:2", reason: "interrupted" }));
    expect(native.sent.map(([topic]) => topic)).toEqual(["room:1", "room:2"]);
  });

  it("publishes around the excluded socket when it is one of this node's, and to everyone otherwise", () => {
    const native = recordingFanout({ "w/a": 2 });
    const wires = new ChannelWires(native);
    wires.attach("room:1", wire("w/a"));
    const around: Array<[string, string]> = [];
    wires.addSocket("1.1", (topic, text) => around.push([topic, text]));
    wires.publish("room:1", event, { excludeSocket: "1.1" });
    expect(around).toEqual([["w/a", "w/a:said:-"]]);
    expect(native.sent.map(([topic]) => topic)).toEqual(["room:1"]);
    wires.publish("room:1", event, { excludeSocket: "9.9" });
    wires.removeSocket("1.1");
    wires.publish("room:1", event, { excludeSocket: "1.1" });
    expect(around).toHaveLength(1);
    expect(native.sent.map(([topic]) => topic)).toEqual(["room:1", "room:1", "w/a", "room:1", "w/a"]);
  });
});
