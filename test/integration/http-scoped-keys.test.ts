import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createIsolatedServices, type IsolatedServices } from "../support/isolated-services.js";
import { signToken, startTestGateway, uniqueId, type TestGateway } from "../support/test-gateway.js";
import { TestClient } from "../support/ws-client.js";

const POST_KEY = "post-publisher-key-0123456789";
const CONTROL_KEY = "control-only-key-0123456789";
const READ_KEY = "read-only-key-0123456789";
const FULL_KEY = "full-access-key-0123456789";

const KEYS = [
  { key: POST_KEY, scopes: ["publish:post"] },
  { key: CONTROL_KEY, scopes: ["control"] },
  { key: READ_KEY, scopes: ["read"] },
  { key: FULL_KEY, scopes: ["*"] },
];

function publish(gateway: TestGateway, key: string, body: unknown): Promise<Response> {
  return fetch(`${gateway.httpUrl}/api/v1/publish`, { method: "POST", headers: { authorization: `Bearer ${key}` }, body: JSON.stringify(body) });
}

function control(gateway: TestGateway, key: string, body: unknown): Promise<Response> {
  return fetch(`${gateway.httpUrl}/api/v1/control`, { method: "POST", headers: { authorization: `Bearer ${key}` }, body: JSON.stringify(body) });
}

function read(gateway: TestGateway, key: string, path: string): Promise<Response> {
  return fetch(`${gateway.httpUrl}${path}`, { headers: { authorization: `Bearer ${key}` } });
}

async function expectForbidden(response: Response, message: string): Promise<void> {
  expect(response.status).toBe(403);
  expect(await response.json()).toEqual({ error: { code: "forbidden", message } });
}

/**
 * One gateway with its worker (ROLE=all: room: is durable, so its events reach
 * subscribers through the persist queue and PostgreSQL), in a vhost and a
 * database of this file's own.
 */
describe("scoped API keys", { timeout: 60_000 }, () => {
  let services: IsolatedServices | undefined;
  let running: TestGateway | undefined;
  beforeAll(async () => {
    services = await createIsolatedServices("t_scoped_keys");
    running = await startTestGateway({
      ROLE: "all",
      RABBITMQ_URL: services.rabbitmqUrl,
      DATABASE_URL: services.databaseUrl,
      API_KEYS: JSON.stringify(KEYS),
      // Two wrong keys per minute per address: a 403 counted as one would soon turn every request into a 429.
      API_KEY_FAILURES_PER_MIN: "2",
    });
  }, 60_000);
  afterAll(async () => {
    await running?.stop();
    await services?.drop();
  });
  const gateway = (): TestGateway => {
    if (!running) throw new Error("the gateway runs only inside a test");
    return running;
  };

  it("lets a publish:post key publish to post: only", async () => {
    const channel = `post:${uniqueId("scoped")}`;
    expect((await publish(gateway(), POST_KEY, { channel, type: "t", data: {} })).status).toBe(202);
    expect((await publish(gateway(), FULL_KEY, { channel, type: "t", data: {} })).status).toBe(202);
    await expectForbidden(await publish(gateway(), CONTROL_KEY, { channel, type: "t", data: {} }), `this API key may not publish to ${channel}: it has scopes control`);
    await expectForbidden(await publish(gateway(), READ_KEY, { channel, type: "t", data: {} }), `this API key may not publish to ${channel}: it has scopes read`);
  });

  it("refuses a publish:post key's publish to room: with 403, and nothing of it reaches a subscriber", async () => {
    const channel = `room:${uniqueId("scoped")}`;
    const client = await TestClient.connect(gateway().wsUrl, { token: await signToken({ channels: ["room:*"] }) });
    try {
      expect(await client.request({ op: "subscribe", channel })).toMatchObject({ op: "ok" });
      await expectForbidden(
        await publish(gateway(), POST_KEY, { channel, type: "t", data: { from: "post-key" }, id: "from-post-key" }),
        `this API key may not publish to ${channel}: it has scopes publish:post`,
      );
      expect((await publish(gateway(), FULL_KEY, { channel, type: "t", data: { from: "full-key" }, id: "from-full-key" })).status).toBe(202);
      // Events of one channel arrive in publish order: the first one is the full key's only if the refused one was never published.
      expect(await client.next((frame) => frame.op === "event")).toMatchObject({ channel, id: "from-full-key", data: { from: "full-key" } });
    } finally {
      client.close();
    }
  });

  it("lets only control and full keys send control commands, refusing the others whatever the body", async () => {
    const command = { command: "disconnect", user: uniqueId("nobody"), mode: "reauthenticate" };
    expect((await control(gateway(), CONTROL_KEY, command)).status).toBe(202);
    expect((await control(gateway(), FULL_KEY, command)).status).toBe(202);
    await expectForbidden(await control(gateway(), POST_KEY, command), "this API key may not send control commands: it has scopes publish:post");
    await expectForbidden(await control(gateway(), READ_KEY, command), "this API key may not send control commands: it has scopes read");
    await expectForbidden(await control(gateway(), READ_KEY, { command: "nope" }), "this API key may not send control commands: it has scopes read");
  });

  it("lets only read and full keys read presence and status", async () => {
    const presence = `/api/v1/presence/room:${uniqueId("scoped")}`;
    const status = `/api/v1/status?users=${uniqueId("user")}`;
    for (const path of [presence, status]) {
      for (const key of [READ_KEY, FULL_KEY]) expect((await read(gateway(), key, path)).status, path).toBe(200);
      await expectForbidden(await read(gateway(), POST_KEY, path), "this API key may not read presence and status: it has scopes publish:post");
      await expectForbidden(await read(gateway(), CONTROL_KEY, path), "this API key may not read presence and status: it has scopes control");
    }
  });

  it("does not count a 403 as a wrong key against the address", async () => {
    const channel = `post:${uniqueId("scoped")}`;
    for (let attempt = 0; attempt < 4; attempt++) {
      expect((await publish(gateway(), READ_KEY, { channel, type: "t", data: {} })).status).toBe(403);
      expect((await read(gateway(), POST_KEY, "/api/v1/status?users=u1")).status).toBe(403);
    }
    expect((await publish(gateway(), POST_KEY, { channel, type: "t", data: {} })).status).toBe(202);
  });
});
