import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signToken, startTestGateway, type TestGateway } from "../support/test-gateway.js";
import { TestClient } from "../support/ws-client.js";
import { waitFor } from "../support/wait-for.js";

const API_KEY = "presence-test-api-key-0123456789";

describe("presence and status on one node (embedded)", () => {
  let gateway: TestGateway;
  const clients: TestClient[] = [];
  const connect = async (sub: string, info?: unknown): Promise<TestClient> => {
    const client = await TestClient.connect(gateway.wsUrl, { token: await signToken({ sub, channels: ["room:*"], info }) });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    gateway = await startTestGateway({ API_KEYS: API_KEY, HEARTBEAT_MS: "200", PRESENCE_TTL_MS: "1500" }, { embedded: true });
    // Embedded mode opens PGlite: slow on a busy machine.
  }, 60_000);
  afterAll(async () => {
    for (const client of clients) client.close();
    await gateway?.stop();
  });

  it("tracks subscribe with presence, lists members with their info, and counts two tabs as one member", async () => {
    const watcher = await connect("watcher");
    expect(await watcher.request({ op: "subscribe", channel: "room:p1" })).toMatchObject({ op: "ok" });
    const tab1 = await connect("alice", { name: "Alice" });
    const tab2 = await connect("alice", { name: "Alice" });
    expect(await tab1.request({ op: "subscribe", channel: "room:p1", presence: true })).toMatchObject({ op: "ok" });
    expect(await watcher.next((f) => f.op === "join")).toEqual({ op: "join", channel: "room:p1", user: "alice", info: { name: "Alice" } });
    expect(await tab2.request({ op: "subscribe", channel: "room:p1", presence: true })).toMatchObject({ op: "ok" });
    expect(await watcher.request({ op: "presence", channel: "room:p1" })).toMatchObject({ op: "ok", count: 1, members: [{ user: "alice", info: { name: "Alice" } }] });
    const http = await fetch(`${gateway.httpUrl}/api/v1/presence/room:p1`, { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(http.status).toBe(200);
    expect(await http.json()).toEqual({ count: 1, members: [{ user: "alice", info: { name: "Alice" } }] });
    expect(await tab1.request({ op: "unsubscribe", channel: "room:p1" })).toMatchObject({ op: "ok" });
    tab2.close();
    expect(await watcher.next((f) => f.op === "leave")).toMatchObject({ op: "leave", channel: "room:p1", user: "alice" });
    expect(watcher.frames.filter((f) => f.op === "join" || f.op === "leave")).toHaveLength(2);
  });

  it("answers status over the op, the status channel and HTTP (API key or user token)", async () => {
    const watcher = await connect("watcher2");
    expect(await watcher.request({ op: "subscribe", channel: "status:bob" })).toMatchObject({ op: "ok" });
    expect(await watcher.request({ op: "status", users: ["bob"] })).toMatchObject({ users: [{ user: "bob", online: false, lastSeen: null }] });
    const bob = await connect("bob");
    expect(await watcher.next((f) => f.op === "status")).toMatchObject({ op: "status", user: "bob", online: true });
    expect(await watcher.request({ op: "status", users: ["bob", "nobody"] })).toMatchObject({
      users: [
        { user: "bob", online: true },
        { user: "nobody", online: false },
      ],
    });
    const byToken = await fetch(`${gateway.httpUrl}/api/v1/status?users=bob`, { headers: { authorization: `Bearer ${await signToken({ sub: "x" })}` } });
    expect(await byToken.json()).toMatchObject({ users: [{ user: "bob", online: true }] });
    bob.close();
    const offline = await watcher.next((f) => f.op === "status" && f.online === false);
    expect(typeof offline.lastSeen).toBe("string");
    const byKey = await fetch(`${gateway.httpUrl}/api/v1/status?users=bob`, { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(await byKey.json()).toMatchObject({ users: [{ user: "bob", online: false, lastSeen: offline.lastSeen }] });
    expect((await fetch(`${gateway.httpUrl}/api/v1/status?users=bob`)).status).toBe(401);
    expect((await fetch(`${gateway.httpUrl}/api/v1/presence/room:p1`)).status).toBe(401);
  });

  it("refuses status for ids outside the user-id grammar, naming the entry by position without echoing it", async () => {
    const client = await connect("erin");
    for (const bad of ["a\u0000b", "a.b", "a b", "", "x".repeat(129)]) {
      const reply = await client.request({ op: "status", users: ["bob", bad] });
      expect(reply).toMatchObject({ op: "error", code: "bad_request", message: expect.stringContaining("users.1") });
      expect(reply.message).not.toContain("\u0000");
    }
    const headers = { authorization: `Bearer ${API_KEY}` };
    for (const bad of ["a%00b", "a.b", "a%20b"]) {
      const http = await fetch(`${gateway.httpUrl}/api/v1/status?users=bob,${bad}`, { headers });
      expect(http.status).toBe(400);
      const body = (await http.json()) as { error: { code: string; message: string } };
      expect(body.error).toMatchObject({ code: "bad_request", message: expect.stringContaining("users.1") });
      expect(body.error.message).not.toContain("\u0000");
    }
    expect(await client.request({ op: "status", users: ["bob", "A_z-9"] })).toMatchObject({ op: "ok", users: [{ user: "bob" }, { user: "A_z-9" }] });
    expect((await fetch(`${gateway.httpUrl}/api/v1/status?users=bob,A_z-9`, { headers })).status).toBe(200);
  });

  it("refuses presence where the namespace has none", async () => {
    const client = await connect("carol");
    expect(await client.request({ op: "subscribe", channel: "post:1", presence: true })).toMatchObject({ op: "error", code: "bad_request" });
    expect(await client.request({ op: "presence", channel: "post:1" })).toMatchObject({ op: "error", code: "bad_request" });
    const http = await fetch(`${gateway.httpUrl}/api/v1/presence/post:1`, { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(http.status).toBe(400);
  });

  it("ends a silent client's presence with close 4008 and a leave", async () => {
    const watcher = await connect("watcher3");
    await watcher.request({ op: "subscribe", channel: "room:ttl" });
    const keepAlive = setInterval(() => watcher.send({ op: "ping" }), 200);
    try {
      const silent = await connect("dave");
      await silent.request({ op: "subscribe", channel: "room:ttl", presence: true });
      await watcher.next((f) => f.op === "join" && f.user === "dave");
      expect((await silent.closed).code).toBe(4008);
      expect(await watcher.next((f) => f.op === "leave" && f.user === "dave", 10_000)).toMatchObject({ channel: "room:ttl" });
      await waitFor(async () => {
        const reply = await watcher.request({ op: "presence", channel: "room:ttl" });
        return reply.count === 0;
      });
    } finally {
      clearInterval(keepAlive);
    }
  });
});
