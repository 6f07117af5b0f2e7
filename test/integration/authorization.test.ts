import { describe, expect, it } from "vitest";
import { suiteGateway } from "../support/suite-gateway.js";
import { signToken, uniqueId } from "../support/test-gateway.js";
import { TestClient, UpgradeRefused } from "../support/ws-client.js";

describe("authentication before the upgrade and authorization per namespace", () => {
  // Rate limits are raised here: this file tests authorization, not rate limiting.
  const gateway = suiteGateway({ RATE_CONNECTION_BURST: "1000", RATE_USER_BURST: "1000" });

  async function refusal(options: Parameters<typeof TestClient.connect>[1]): Promise<UpgradeRefused> {
    const error = await TestClient.connect(gateway().wsUrl, options).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UpgradeRefused);
    return error as UpgradeRefused;
  }

  it("answers HTTP 401 with an error body for a missing, forged, expired or subject-less token", async () => {
    for (const options of [
      {},
      { token: "not-a-jwt" },
      { token: await signToken({ secret: "another-secret-that-is-long-enough-xx" }) },
      { token: await signToken({ expiresInSec: -60 }) },
      { token: await signToken({ sub: "" }) },
    ]) {
      const refused = await refusal(options);
      expect(refused.status).toBe(401);
      expect(JSON.parse(refused.body)).toMatchObject({ error: { code: "unauthorized", message: expect.any(String) } });
    }
  });

  it("accepts the token in the Authorization header as well as in the query", async () => {
    const client = await TestClient.connect(gateway().wsUrl, { headers: { authorization: `Bearer ${await signToken()}` } });
    expect(client.frames[0]).toMatchObject({ op: "welcome", node: gateway().nodeId, heartbeatMs: 25_000, ttlMs: 60_000, maxFrameBytes: 65_536 });
    client.close();
  });

  it("lets a user subscribe to their own user channel only", async () => {
    const client = await TestClient.connect(gateway().wsUrl, { token: await signToken({ sub: "alice" }) });
    expect(await client.request({ op: "subscribe", channel: "user:alice" })).toMatchObject({ op: "ok" });
    expect(await client.request({ op: "subscribe", channel: "user:bob" })).toMatchObject({ op: "error", code: "forbidden" });
    client.close();
  });

  it("admits room channels by the JWT channels claim, exact or namespace wildcard", async () => {
    const exact = await TestClient.connect(gateway().wsUrl, { token: await signToken({ channels: ["room:7"] }) });
    expect(await exact.request({ op: "subscribe", channel: "room:7" })).toMatchObject({ op: "ok" });
    expect(await exact.request({ op: "subscribe", channel: "room:8" })).toMatchObject({ op: "error", code: "forbidden" });
    const wildcard = await TestClient.connect(gateway().wsUrl, { token: await signToken({ channels: ["room:*"] }) });
    expect(await wildcard.request({ op: "subscribe", channel: "room:8" })).toMatchObject({ op: "ok" });
    const none = await TestClient.connect(gateway().wsUrl, { token: await signToken() });
    expect(await none.request({ op: "subscribe", channel: "room:7" })).toMatchObject({ op: "error", code: "forbidden" });
    for (const client of [exact, wildcard, none]) client.close();
  });

  it("lets any authenticated user subscribe to post and status channels", async () => {
    const client = await TestClient.connect(gateway().wsUrl, { token: await signToken() });
    expect(await client.request({ op: "subscribe", channel: "post:1" })).toMatchObject({ op: "ok" });
    expect(await client.request({ op: "subscribe", channel: "status:someone" })).toMatchObject({ op: "ok" });
    client.close();
  });

  it("rejects channel names that would become AMQP wildcards, and unknown namespaces", async () => {
    const client = await TestClient.connect(gateway().wsUrl, { token: await signToken({ channels: ["room:*"] }) });
    for (const channel of ["room:7.8", "room:*", "room:#", "room:", ":7", "room", "room:a b", "ro.om:7"]) {
      expect(await client.request({ op: "subscribe", channel })).toMatchObject({ op: "error", code: "bad_request" });
    }
    expect(await client.request({ op: "subscribe", channel: "nope:1" })).toMatchObject({ op: "error", code: "not_found" });
    client.close();
  });

  it("allows at most 128 subscriptions per connection", async () => {
    const client = await TestClient.connect(gateway().wsUrl, { token: await signToken() });
    const base = uniqueId("many");
    const replies = await Promise.all(
      Array.from({ length: 128 }, (_, i) => client.request({ op: "subscribe", channel: `post:${base}-${i}` }, 15_000)),
    );
    expect(replies.every((reply) => reply.op === "ok")).toBe(true);
    expect(await client.request({ op: "subscribe", channel: `post:${base}-extra` })).toMatchObject({ op: "error", code: "limit_exceeded" });
    expect(await client.request({ op: "subscribe", channel: `post:${base}-0` })).toMatchObject({ op: "ok" });
    client.close();
  });
});
