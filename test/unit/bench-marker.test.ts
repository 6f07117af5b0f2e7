import { describe, expect, it } from "vitest";
import { channelEvent } from "../../src/adapters/pusher/socket-frames.js";
import { eventBody, eventFrame, readMarker } from "../bench/payload.js";

/**
 * The benchmarks' clients find an event's marker without parsing the frame
 * (test/bench/payload.ts): in a native frame, and inside the JSON string a
 * Pusher frame carries as `data`, as the gateway serializes them.
 */
describe("bench marker", () => {
  const body = eventBody("run1", 3, 2, 41, 1234.5, 200);
  const data = (JSON.parse(body) as { data: unknown }).data;

  it("is read from a native event frame", () => {
    expect(readMarker(Buffer.from(eventFrame("post:bench3", body)))).toEqual({ phase: 2, seq: 41, sendMs: 1234.5 });
  });

  it("is read from the Pusher event frame the gateway writes", () => {
    expect(readMarker(Buffer.from(channelEvent("post.bench3", "bench.tick", data)))).toEqual({ phase: 2, seq: 41, sendMs: 1234.5 });
  });

  it("is not found in other frames", () => {
    expect(readMarker(Buffer.from(JSON.stringify({ event: "pusher_internal:subscription_succeeded", channel: "post.bench3", data: "{}" })))).toBeNull();
  });
});
