import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectionName } from "../../src/adapters/amqp/topology.js";
import { closeConnectionsNamed, createRabbitVhost, type RabbitVhost } from "../support/rabbit-vhost.js";
import { suiteGateway, suiteGatewayBehindProxy } from "../support/suite-gateway.js";
import { signToken, startTestGateway, uniqueId, type TestGateway } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { TestClient } from "../support/ws-client.js";

const KEY = "backend-key-0123456789";

/** `key` null sends no Authorization header. */
function post(gateway: TestGateway, body: unknown, key: string | null = KEY): Promise<Response> {
  return fetch(`${gateway.httpUrl}/api/v1/publish`, {
    method: "POST",
    headers: key === null ? {} : { authorization: `Bearer ${key}` },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** `levels` nested arrays: `[[[…]]]`. */
function nested(levels: number): unknown {
  let data: unknown = [];
  for (let level = 1; level < levels; level++) data = [data];
  return data;
}

describe("HTTP publish API", () => {
  const gateway = suiteGateway({ API_KEYS: `${KEY},second-key-0123456789`, API_RATE_PER_SEC: "1", API_RATE_BURST: "1000" });

  it("answers 202 with the id after the broker confirmed, and the event reaches subscribers", async () => {
    const id = uniqueId("h");
    const client = await TestClient.connect(gateway().wsUrl, { token: await signToken() });
    await client.request({ op: "subscribe", channel: `post:${id}` });
    const response = await post(gateway(), { channel: `post:${id}`, type: "comment.created", data: { text: "hi" }, id: "evt-http-1" });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ id: "evt-http-1" });
    expect(await client.next((f) => f.op === "event")).toMatchObject({ channel: `post:${id}`, id: "evt-http-1", data: { text: "hi" } });
    const generated = await post(gateway(), { channel: `post:${id}`, type: "t", data: null });
    expect((await generated.json()) as { id: string }).toMatchObject({ id: expect.any(String) });
    client.close();
  });

  it("refuses requests without a valid API key with 401", async () => {
    for (const key of [null, "wrong-key-0123456789", `${KEY}x`]) {
      const response = await post(gateway(), { channel: "post:1", type: "t", data: {} }, key);
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ error: { code: "unauthorized" } });
    }
  });

  it("answers bad bodies with 400, unknown namespaces with 404 and oversized bodies with 413", async () => {
    const cases: Array<[unknown, number, string]> = [
      ["{not json", 400, "bad_request"],
      [{ channel: "post:1", type: "a.*", data: {} }, 400, "bad_request"],
      [{ channel: "post.1", type: "t", data: {} }, 400, "bad_request"],
      [{ channel: "post:1", type: "t" }, 400, "bad_request"],
      [{ channel: "post:1", type: "t", data: {}, id: "x".repeat(65) }, 400, "bad_request"],
      // Data nested over 64 levels; the 10,000-deep one is a 20 KB body that would overflow JSON.stringify.
      [{ channel: "post:1", type: "t", data: nested(65) }, 400, "bad_request"],
      [`{"channel":"post:1","type":"t","data":${"[".repeat(10_000)}${"]".repeat(10_000)}}`, 400, "bad_request"],
      [{ channel: "nope:1", type: "t", data: {} }, 404, "not_found"],
      [{ channel: "post:1", type: "t", data: "x".repeat(70_000) }, 413, "too_large"],
      // A body under the limit whose event would not be: 16,000 × 1e9 re-serialized as 1000000000 each.
      [`{"channel":"post:1","type":"t","data":[${Array.from({ length: 16_000 }, () => "1e9").join(",")}]}`, 413, "too_large"],
    ];
    for (const [body, status, code] of cases) {
      const response = await post(gateway(), body);
      expect(response.status, JSON.stringify(body).slice(0, 60)).toBe(status);
      expect(await response.json()).toMatchObject({ error: { code, message: expect.any(String) } });
    }
    const deep = await post(gateway(), { channel: "post:1", type: "t", data: nested(65) });
    expect(await deep.json()).toMatchObject({ error: { message: expect.stringContaining("more than 64 levels deep") } });
    expect((await post(gateway(), { channel: `post:${uniqueId("h")}`, type: "t", data: nested(64) })).status).toBe(202);
  });

  it("rate-limits each key on its own with 429 and retryAfterMs", async () => {
    const limited = await startTestGateway({ API_KEYS: `${KEY},second-key-0123456789`, API_RATE_PER_SEC: "1", API_RATE_BURST: "2" });
    try {
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await post(limited, { channel: "post:1", type: "t", data: i })).status);
      expect(statuses).toEqual([202, 202, 429]);
      const refused = await post(limited, { channel: "post:1", type: "t", data: 3 });
      expect(await refused.json()).toMatchObject({ error: { code: "rate_limited", retryAfterMs: expect.any(Number) } });
      expect((await post(limited, { channel: "post:1", type: "t", data: 4 }, "second-key-0123456789")).status).toBe(202);
    } finally {
      await limited.stop();
    }
  });
});

describe("HTTP publish while the broker is away", () => {
  const { gateway, proxy } = suiteGatewayBehindProxy({ API_KEYS: KEY });

  it("answers 503 and publishes nothing, then 202 once the broker is back", async () => {
    proxy().cut();
    await waitFor(async () => (await fetch(`${gateway().httpUrl}/readyz`)).status === 503, 10_000, "not ready");
    const refused = await post(gateway(), { channel: "post:1", type: "t", data: {} });
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ error: { code: "unavailable" } });
    proxy().restore();
    await waitFor(async () => (await fetch(`${gateway().httpUrl}/readyz`)).status === 200, 15_000, "ready again");
    expect((await post(gateway(), { channel: "post:1", type: "t", data: {} })).status).toBe(202);
  });
});

describe("HTTP publish while only the publish connection is away", () => {
  let vhost: RabbitVhost | undefined;
  let gateway: TestGateway | undefined;
  beforeAll(async () => {
    vhost = await createRabbitVhost("publish-readiness");
    gateway = await startTestGateway({ API_KEYS: KEY, RABBITMQ_URL: vhost.url });
  }, 60_000);
  afterAll(async () => {
    // Stopping opens no connection, so a limit left by a failed test does not hold it up; the vhost goes with it.
    await gateway?.stop();
    await vhost?.drop();
  });

  async function readyz(): Promise<{ status: number; body: { ready: boolean; checks: Record<string, boolean> } }> {
    const response = await fetch(`${gateway!.httpUrl}/readyz`);
    return { status: response.status, body: (await response.json()) as { ready: boolean; checks: Record<string, boolean> } };
  }

  it("answers /readyz 503 while HTTP publishes answer 503, the consuming connection still up, and both recover together", async () => {
    await waitFor(async () => (await readyz()).status === 200, 10_000, "ready with every connection open");
    // Only this gateway connects to the vhost: a limit of one fewer than now keeps the closed connection out.
    await vhost!.limitConnections((await vhost!.connectionCount()) - 1);
    expect(await closeConnectionsNamed(`${connectionName(gateway!.nodeId)}-publish`)).toBe(1);

    await waitFor(async () => (await readyz()).status === 503, 10_000, "not ready without the publish connection");
    expect((await readyz()).body.checks).toMatchObject({ broker: true, brokerPublish: false, presence: true });
    const refused = await post(gateway!, { channel: "post:1", type: "t", data: {} });
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ error: { code: "unavailable" } });

    await vhost!.limitConnections(null);
    await waitFor(async () => (await readyz()).status === 200, 15_000, "ready again");
    expect((await readyz()).body.checks).toMatchObject({ broker: true, brokerPublish: true });
    expect((await post(gateway!, { channel: "post:1", type: "t", data: {} })).status).toBe(202);
  });
});
