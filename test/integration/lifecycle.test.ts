import { afterEach, describe, expect, it } from "vitest";
import { TestPublisher } from "../support/amqp-tools.js";
import { signToken, startTestGateway, uniqueId, type TestGateway } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { TestClient, UpgradeRefused } from "../support/ws-client.js";

describe("connection lifecycle", () => {
  const started: TestGateway[] = [];
  const start = async (env: Record<string, string>) => {
    const gateway = await startTestGateway(env);
    started.push(gateway);
    return gateway;
  };

  afterEach(async () => {
    await Promise.all(started.splice(0).map((gateway) => gateway.stop()));
  });

  it("drains: /readyz 503, new upgrades 503, a reconnect frame within the grace period, then close 1012", async () => {
    const gateway = await start({ DRAIN_GRACE_MS: "500" });
    const client = await TestClient.connect(gateway.wsUrl, { token: await signToken() });
    const stopped = gateway.stop();
    const reconnect = await client.next((f) => f.op === "reconnect");
    expect(reconnect).toMatchObject({ reason: "drain" });
    expect(reconnect.afterMs).toBeGreaterThanOrEqual(0);
    expect(reconnect.afterMs).toBeLessThan(500);
    expect((await fetch(`${gateway.httpUrl}/readyz`)).status).toBe(503);
    const refused = await TestClient.connect(gateway.wsUrl, { token: await signToken() }).catch((e: unknown) => e);
    expect((refused as UpgradeRefused).status).toBe(503);
    expect(await client.closed).toMatchObject({ code: 1012 });
    await stopped;
  });

  it("closes 4008 when a client stays silent past the TTL, and keeps clients that heartbeat", async () => {
    const gateway = await start({ HEARTBEAT_MS: "100", PRESENCE_TTL_MS: "600" });
    const silent = await TestClient.connect(gateway.wsUrl, { token: await signToken() });
    const pinging = await TestClient.connect(gateway.wsUrl, { token: await signToken() });
    const wsPinging = await TestClient.connect(gateway.wsUrl, { token: await signToken() });
    const heartbeat = setInterval(() => {
      pinging.send({ op: "ping" });
      wsPinging.socket.ping();
    }, 100);
    try {
      expect(await silent.closed).toMatchObject({ code: 4008 });
      // The silent client had the same TTL: the others outlived it while heartbeating.
      expect(pinging.socket.readyState).toBe(pinging.socket.OPEN);
      expect(wsPinging.socket.readyState).toBe(wsPinging.socket.OPEN);
    } finally {
      clearInterval(heartbeat);
      pinging.close();
      wsPinging.close();
    }
  });

  it("closes 4001 when the token expires, unless refreshed with a token for the same user", async () => {
    const gateway = await start({});
    const expiring = await TestClient.connect(gateway.wsUrl, { token: await signToken({ sub: "ann", expiresInSec: 1 }) });
    const refreshed = await TestClient.connect(gateway.wsUrl, { token: await signToken({ sub: "ann", expiresInSec: 1 }) });
    expect(await refreshed.request({ op: "refresh", token: await signToken({ sub: "bob" }) })).toMatchObject({ code: "forbidden" });
    expect(await refreshed.request({ op: "refresh", token: "garbage" })).toMatchObject({ code: "unauthorized" });
    expect(await refreshed.request({ op: "refresh", token: await signToken({ sub: "ann", expiresInSec: 60 }) })).toMatchObject({ op: "ok" });
    expect(await expiring.closed).toMatchObject({ code: 4001 });
    expect(await refreshed.request({ op: "ping" })).toMatchObject({ op: "pong" });
    refreshed.close();
  });

  it("answers 503 at capacity", async () => {
    const gateway = await start({ MAX_CONNECTIONS: "2" });
    const open = [await TestClient.connect(gateway.wsUrl, { token: await signToken() }), await TestClient.connect(gateway.wsUrl, { token: await signToken() })];
    const refused = await TestClient.connect(gateway.wsUrl, { token: await signToken() }).catch((e: unknown) => e);
    expect((refused as UpgradeRefused).status).toBe(503);
    for (const client of open) client.close();
  });

  it("closes a client that stops reading with 4013 while a fast client on the same channel gets everything", async () => {
    const gateway = await start({ SEND_BUFFER_BYTES: "262144" });
    const channel = uniqueId("slow");
    const slow = await TestClient.connect(gateway.wsUrl, { token: await signToken() });
    const fast = await TestClient.connect(gateway.wsUrl, { token: await signToken() });
    await slow.request({ op: "subscribe", channel: `post:${channel}` });
    await fast.request({ op: "subscribe", channel: `post:${channel}` });
    const rawSocket = (slow.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    rawSocket.pause();

    // Loopback kernel buffers take several MB before the server's own send
    // buffer grows, so the burst is large. It goes out four events at a time,
    // each group once the fast client has the previous one: the gateway and
    // both clients share this test process's thread, and an unpaced burst
    // could back up the fast client's buffer too. The slow client resumes
    // reading once the server closed it, so the close frame behind its
    // buffered events reaches it.
    const publisher = await TestPublisher.open();
    const events = 300;
    const pad = "x".repeat(60_000);
    for (let first = 0; first < events; first += 4) {
      const ids = Array.from({ length: Math.min(4, events - first) }, (_, i) => `big-${first + i}`);
      await Promise.all(ids.map((id) => publisher.publish(`post.${channel}.big`, { id, type: "big", data: { pad } })));
      await fast.next((f) => f.id === ids.at(-1), 20_000);
    }
    await publisher.close();
    await waitFor(
      async () => /sobranie_connections_closed_total\{[^}]*code="4013"[^}]*\} [1-9]/.test(await (await fetch(`${gateway.httpUrl}/metrics`)).text()),
      20_000,
      "a 4013 close",
    );
    rawSocket.resume();
    expect(await slow.closed).toMatchObject({ code: 4013 });
    expect(fast.events(`post:${channel}`)).toHaveLength(events);
    fast.close();
  });
});
