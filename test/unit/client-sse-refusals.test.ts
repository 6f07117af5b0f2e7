import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { connect, type FetchLike } from "@sobranie/client";

/** A fetch that answers every SSE request with `status`, and counts them. */
function refusing(status: number): { fetch: FetchLike; calls: () => number } {
  let calls = 0;
  const fetch: FetchLike = async () => {
    calls++;
    return { ok: false, status, body: null, text: async () => "refused" };
  };
  return { fetch, calls: () => calls };
}

/** How the SDK maps HTTP refusals of its SSE request onto close codes (@sobranie/protocol/codes: CloseCode, ClientCloseCode). */
describe("client SDK: HTTP refusals of SSE", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  for (const status of [400, 403, 404]) {
    it(`treats ${status} as final (ClientCloseCode.Refused): a bad_request error, no retry`, async () => {
      const { fetch, calls } = refusing(status);
      const client = connect({ url: "http://gw.test", token: "tok", transport: "sse", fetch, random: () => 0.5 });
      const errors: string[] = [];
      client.on("error", (error) => errors.push(error.code));
      client.subscribe("room:1", () => {}).catch(() => {});
      await vi.advanceTimersByTimeAsync(60_000);
      expect(calls()).toBe(1);
      expect(errors).toContain("bad_request");
      expect(client.state).toBe("closed");
    });
  }

  for (const status of [429, 503]) {
    it(`retries after ${status} (RateLimitAbused / ServiceRestart)`, async () => {
      const { fetch, calls } = refusing(status);
      const client = connect({ url: "http://gw.test", token: "tok", transport: "sse", fetch, random: () => 0.5 });
      client.subscribe("room:1", () => {}).catch(() => {});
      await vi.advanceTimersByTimeAsync(60_000);
      expect(calls()).toBeGreaterThan(1);
      expect(client.state).not.toBe("closed");
      client.close();
    });
  }
});
