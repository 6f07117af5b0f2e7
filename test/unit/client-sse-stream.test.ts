import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { connect, type FetchLike } from "@sobranie/client";

/** One SSE request the fake fetch answered: the test plays the server by pushing frames into its stream. */
interface Stream {
  readonly url: string;
  push(frame: Record<string, unknown>): void;
  cancelled: boolean;
}

/** A fetch whose every request gets an open event stream the test writes to. */
function streamingFetch(): { fetch: FetchLike; streams: Stream[] } {
  const streams: Stream[] = [];
  const fetch: FetchLike = async (url) => {
    const chunks: Uint8Array[] = [];
    let wake: (() => void) | undefined;
    const stream: Stream = {
      url,
      cancelled: false,
      push(frame) {
        chunks.push(new TextEncoder().encode(`data: ${JSON.stringify(frame)}\n\n`));
        wake?.();
      },
    };
    streams.push(stream);
    const reader = {
      async read(): Promise<{ done: boolean; value?: Uint8Array }> {
        while (chunks.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        return { done: false, value: chunks.shift() };
      },
      async cancel(): Promise<void> {
        stream.cancelled = true;
      },
    };
    return { ok: true, status: 200, body: { getReader: () => reader }, text: async () => "" };
  };
  return { fetch, streams };
}

describe("client SDK over SSE: the channel list is the stream's URL", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("matches each reply to its channel by position in the URL, and reopens the stream without a channel refused for good", async () => {
    const { fetch, streams } = streamingFetch();
    const client = connect({ url: "http://gw.test", token: "tok", transport: "sse", fetch, random: () => 0.5 });
    client.on("error", () => {});
    const first = client.subscribe("room:1", () => {});
    const second = client.subscribe("room:2", () => {});
    first.catch(() => {});
    await vi.advanceTimersByTimeAsync(0);
    expect(streams.map((stream) => stream.url)).toEqual(["http://gw.test/realtime/events?channels=room%3A1%2Croom%3A2"]);

    streams[0]!.push({ op: "ok", ref: 2, recovered: false, missed: 0 });
    streams[0]!.push({ op: "error", ref: 1, code: "forbidden", message: "not a member" });
    await vi.advanceTimersByTimeAsync(0);
    await expect(second).resolves.toEqual({ recovered: false, missed: 0 });
    await expect(first).rejects.toMatchObject({ code: "forbidden" });

    const third = client.subscribe("room:3", () => {});
    await vi.advanceTimersByTimeAsync(0);
    expect(streams.map((stream) => stream.url).at(-1)).toBe("http://gw.test/realtime/events?channels=room%3A2%2Croom%3A3");
    streams.at(-1)!.push({ op: "ok", ref: 2, recovered: false, missed: 0 });
    await vi.advanceTimersByTimeAsync(0);
    await expect(third).resolves.toEqual({ recovered: false, missed: 0 });
    client.close();
  });
});
