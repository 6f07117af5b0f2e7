import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { suiteGateway } from "../support/suite-gateway.js";
import { signToken, startTestGateway, uniqueId, type TestGateway } from "../support/test-gateway.js";

const KEY = "limits-key-0123456789";

function status(gateway: TestGateway, bearer: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${gateway.httpUrl}/api/v1/status?users=u1`, { headers: { authorization: `Bearer ${bearer}`, ...headers } });
}

function publish(gateway: TestGateway, key: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${gateway.httpUrl}/api/v1/publish`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, ...headers },
    body: JSON.stringify({ channel: "post:1", type: "t", data: {} }),
  });
}

async function expectRateLimited(response: Response): Promise<void> {
  expect(response.status).toBe(429);
  const body = (await response.json()) as { error: { code: string; message: string; retryAfterMs: number } };
  expect(body).toMatchObject({ error: { code: "rate_limited", message: expect.any(String), retryAfterMs: expect.any(Number) } });
  expect(response.headers.get("retry-after")).toBe(String(Math.ceil(body.error.retryAfterMs / 1000)));
}

async function statuses(responses: Promise<Response>[]): Promise<number[]> {
  const settled = [];
  for (const response of responses) settled.push((await response).status);
  return settled;
}

async function counted(gateway: TestGateway, scope: string): Promise<number> {
  const text = await (await fetch(`${gateway.httpUrl}/metrics`)).text();
  return Number(new RegExp(`^sobranie_http_rate_limited_total\\{scope="${scope}"[^}]*\\} (\\d+)`, "m").exec(text)?.[1]);
}

describe("HTTP rate limits per user", () => {
  const gateway = suiteGateway({ API_KEYS: KEY, HTTP_USER_RATE_PER_SEC: "1", HTTP_USER_BURST: "2" });

  it("refuses a user's requests past the burst with 429, Retry-After and retryAfterMs; other users and API keys are not affected", async () => {
    const alice = await signToken({ sub: uniqueId("alice") });
    expect(await statuses([status(gateway(), alice), status(gateway(), alice)])).toEqual([200, 200]);
    await expectRateLimited(await status(gateway(), alice));
    expect((await status(gateway(), await signToken({ sub: uniqueId("bob") }))).status).toBe(200);
    expect((await status(gateway(), KEY)).status).toBe(200);
    expect(await counted(gateway(), "user")).toBeGreaterThanOrEqual(1);
  });

  it("counts SSE connects against the user's rate", async () => {
    const carol = await signToken({ sub: uniqueId("carol") });
    const controller = new AbortController();
    const connect = () => fetch(`${gateway().httpUrl}/realtime/events?channels=post:1&token=${carol}`, { signal: controller.signal });
    try {
      expect(await statuses([connect(), connect()])).toEqual([200, 200]);
      await expectRateLimited(await connect());
    } finally {
      controller.abort();
    }
  });
});

describe("HTTP rate limits per client address", () => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway({
      API_KEYS: KEY,
      HTTP_SOURCE_RATE_PER_SEC: "1",
      HTTP_SOURCE_BURST: "3",
      API_KEY_FAILURES_PER_MIN: "2",
      TRUSTED_PROXIES: "127.0.0.1",
    });
  });

  afterAll(async () => {
    await gateway?.stop();
  });

  it("refuses a flood of bad tokens from one address before verifying them, valid ones from there too; other addresses go on", async () => {
    const from = { "x-forwarded-for": "203.0.113.1" };
    expect(await statuses([status(gateway, "bad", from), status(gateway, "bad", from), status(gateway, "bad", from)])).toEqual([401, 401, 401]);
    await expectRateLimited(await status(gateway, await signToken(), from));
    // A client's own X-Forwarded-For entries (left of what the proxy appended) do not change its address.
    await expectRateLimited(await status(gateway, await signToken(), { "x-forwarded-for": "198.51.100.9, 203.0.113.1" }));
    expect((await status(gateway, await signToken(), { "x-forwarded-for": "203.0.113.2" })).status).toBe(200);
    expect(await counted(gateway, "source")).toBeGreaterThanOrEqual(2);
  });

  it("refuses API-key requests from an address after too many wrong keys, even with the right key", async () => {
    const from = { "x-forwarded-for": "203.0.113.50" };
    expect(await statuses([publish(gateway, "wrong-key-0123456789", from), publish(gateway, "wrong-key-0123456789", from)])).toEqual([401, 401]);
    await expectRateLimited(await publish(gateway, KEY, from));
    const presence = await fetch(`${gateway.httpUrl}/api/v1/presence/room:1`, { headers: { authorization: `Bearer ${KEY}`, ...from } });
    await expectRateLimited(presence);
    expect((await publish(gateway, KEY, { "x-forwarded-for": "203.0.113.51" })).status).toBe(202);
    expect(await counted(gateway, "api_key_failures")).toBeGreaterThanOrEqual(2);
  });
});
