import { describe, expect, it } from "vitest";
import { dataWithSeq } from "../../../src/adapters/pusher/seq-data.js";
import { pusherChannelWire } from "../../../src/adapters/pusher/socket-channel-wire.js";
import type { PusherChannel } from "../../../src/adapters/pusher/channel-names.js";

/** The reading docs/pusher.md ("Recovery") gives apps: `__data` marks a wrapping, otherwise `__seq` is the added member. */
function readSeqData(data: Record<string, unknown>): { seq: unknown; data: unknown } {
  const { __seq: seq, ...rest } = data;
  return "__data" in data ? { seq, data: data.__data } : { seq, data: rest };
}

const channel = (seqInData: boolean): PusherChannel => ({ pusherName: "private-orders.7", channel: { namespace: "orders", id: "7", name: "orders:7" }, kind: "private", cache: false, seqInData });
const event = (data: unknown, seq?: number) => ({ op: "event" as const, channel: "orders:7", id: "e1", type: "order.shipped", data, ts: "2026-01-01T00:00:00Z", ...(seq === undefined ? {} : { seq }) });

describe("an event's seq inside its Pusher data", () => {
  it("adds __seq to an object and wraps everything else, reversibly", () => {
    expect(dataWithSeq({ id: 3, name: "a" }, 42)).toEqual({ id: 3, name: "a", __seq: 42 });
    const samples: unknown[] = [{ id: 3 }, {}, "text", 7, null, [1, 2], { __seq: "mine" }, { __data: 1 }, { __data: 1, __seq: 2, x: 3 }];
    for (const data of samples) {
      const carried = dataWithSeq(data, 42);
      expect(readSeqData(JSON.parse(JSON.stringify(carried)) as Record<string, unknown>), JSON.stringify(data)).toEqual({ seq: 42, data });
    }
    expect(dataWithSeq("text", 5)).toEqual({ __seq: 5, __data: "text" });
    expect(dataWithSeq({ __seq: "mine" }, 5)).toEqual({ __seq: 5, __data: { __seq: "mine" } });
  });

  it("is what the Pusher wire sends on a seqInData channel, and only there", () => {
    const frame = event({ id: 3 }, 9);
    expect(JSON.parse(pusherChannelWire(channel(true)).encode(frame, undefined)!)).toEqual({ event: "order.shipped", channel: "private-orders.7", data: '{"id":3,"__seq":9}' });
    expect(JSON.parse(pusherChannelWire(channel(false)).encode(frame, undefined)!).data).toBe('{"id":3}');
    // A string is wrapped, not sent as the bare string it would otherwise be.
    expect(JSON.parse(pusherChannelWire(channel(true)).encode(event("hello", 10), undefined)!).data).toBe('{"__seq":10,"__data":"hello"}');
    // An event that was never stored has no seq to carry.
    expect(JSON.parse(pusherChannelWire(channel(true)).encode(event({ id: 3 }), undefined)!).data).toBe('{"id":3}');
  });
});
