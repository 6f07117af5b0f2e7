import { describe, expect, it } from "vitest";
import { SseTestClient } from "../support/sse-client.js";
import { suiteGateway } from "../support/suite-gateway.js";
import { signToken } from "../support/test-gateway.js";
import { TestClient, type Closed } from "../support/ws-client.js";

const DAY_SEC = 86_400;

/** Resolves with the close, or with "open" when the connection is still up after `ms`. */
function stillOpenAfter(closed: Promise<Closed>, ms: number): Promise<Closed | "open"> {
  return Promise.race([closed, new Promise<"open">((resolve) => setTimeout(() => resolve("open"), ms))]);
}

/**
 * Tokens of any lifetime stay connected until their `exp`: a delay past
 * 2^31−1 ms (24.8 days) would fire a runtime timer at once and close 4001.
 */
describe("long-lived tokens", () => {
  const gateway = suiteGateway();

  it("keeps a WebSocket with a 60-day token open, and after a refresh to a 90-day one", async () => {
    const client = await TestClient.connect(gateway().wsUrl, { token: await signToken({ sub: "months", expiresInSec: 60 * DAY_SEC }) });
    expect(await stillOpenAfter(client.closed, 1_000)).toBe("open");
    const refreshed = await client.request({ op: "refresh", token: await signToken({ sub: "months", expiresInSec: 90 * DAY_SEC }) });
    expect(refreshed.op).toBe("ok");
    expect(await stillOpenAfter(client.closed, 1_000)).toBe("open");
    client.close();
  });

  it("keeps an SSE stream with a 60-day token open", async () => {
    const token = await signToken({ sub: "months", expiresInSec: 60 * DAY_SEC });
    const stream = await SseTestClient.open(`${gateway().httpUrl}/realtime/events?channels=post:1`, { authorization: `Bearer ${token}` });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(stream.ended).toBe(false);
    stream.close();
  });
});
