import { describe, expect, it } from "vitest";
import { suiteGateway } from "../support/suite-gateway.js";
import { signToken, uniqueId } from "../support/test-gateway.js";
import { SseRefused, SseTestClient } from "../support/sse-client.js";
import { waitFor } from "../support/wait-for.js";

const API_KEY = "sse-test-api-key-0123456789";

/** SSE on one embedded gateway (ROLE=all: in-process broker, worker and PGlite store, so durable channels have seqs). */
describe("SSE /realtime/events", () => {
  const gateway = suiteGateway({ API_KEYS: API_KEY, SEND_BUFFER_BYTES: "262144" }, { embedded: true });

  const streamUrl = (channels: string, query = "") => `${gateway().httpUrl}/realtime/events?channels=${encodeURIComponent(channels)}${query}`;
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  async function publish(channel: string, type: string, data: unknown): Promise<string> {
    const response = await fetch(`${gateway().httpUrl}/api/v1/publish`, {
      method: "POST",
      headers: { ...bearer(API_KEY), "content-type": "application/json" },
      body: JSON.stringify({ channel, type, data }),
    });
    expect(response.status).toBe(202);
    return ((await response.json()) as { id: string }).id;
  }

  async function openReady(channels: string, headers: Record<string, string>, query = ""): Promise<SseTestClient> {
    const client = await SseTestClient.open(streamUrl(channels, query), headers);
    const count = channels.split(",").length;
    await client.next((message) => message.data.op === "ok" && message.data.ref === count);
    return client;
  }

  it("refuses a missing or bad token with 401 JSON before the stream starts", async () => {
    const missing = await SseTestClient.open(streamUrl("post:1")).catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(SseRefused);
    expect((missing as SseRefused).status).toBe(401);
    expect((missing as SseRefused).contentType).toContain("application/json");
    expect(JSON.parse((missing as SseRefused).body)).toMatchObject({ error: { code: "unauthorized" } });

    const bad = await SseTestClient.open(streamUrl("post:1"), bearer("not.a.jwt")).catch((error: unknown) => error);
    expect((bad as SseRefused).status).toBe(401);
    const expired = await SseTestClient.open(streamUrl("post:1", `&token=${await signToken({ expiresInSec: -60 })}`)).catch((error: unknown) => error);
    expect((expired as SseRefused).status).toBe(401);
  });

  it("refuses a missing or malformed channel list with 400", async () => {
    const token = await signToken();
    const none = await SseTestClient.open(`${gateway().httpUrl}/realtime/events`, bearer(token)).catch((error: unknown) => error);
    expect((none as SseRefused).status).toBe(400);
    const bad = await SseTestClient.open(streamUrl("room.7"), bearer(token)).catch((error: unknown) => error);
    expect((bad as SseRefused).status).toBe(400);
  });

  it("streams welcome, one ok per channel and events as event:/data: messages, ids only on durable events", async () => {
    const room = `room:${uniqueId("r")}`;
    const token = await signToken({ sub: "alice", channels: [room] });
    const client = await openReady(`post:sse1,${room}`, {}, `&token=${token}`);
    expect(client.response.headers["content-type"]).toContain("text/event-stream");
    expect(client.messages[0]).toMatchObject({ event: "sobranie.welcome", id: undefined, data: { op: "welcome" } });
    expect(client.messages.filter((m) => m.data.op === "ok").map((m) => m.data.ref)).toEqual([1, 2]);

    const liveId = await publish("post:sse1", "comment.created", { text: "hi" });
    const live = await client.next((m) => m.data.id === liveId);
    expect(live).toMatchObject({ event: "comment.created", id: undefined, data: { op: "event", channel: "post:sse1", type: "comment.created", data: { text: "hi" } } });
    expect(live.raw).toBe(`event: comment.created\ndata: ${JSON.stringify(live.data)}\n\n`);

    const durableId = await publish(room, "message.created", { text: "kept" });
    const durable = await client.next((m) => m.data.id === durableId);
    expect(durable.event).toBe("message.created");
    expect(typeof durable.data.seq).toBe("number");
    expect(durable.id).toBe(String(durable.data.seq));
    client.close();
  });

  it("answers a forbidden channel in the stream, without ending it", async () => {
    const token = await signToken({ sub: "bob", channels: [] });
    const client = await openReady("user:alice,post:ok", bearer(token));
    expect(client.messages.find((m) => m.data.ref === 1)).toMatchObject({ event: "sobranie.error", data: { op: "error", code: "forbidden" } });
    expect(client.messages.find((m) => m.data.ref === 2)).toMatchObject({ event: "sobranie.ok" });
    client.close();
  });

  it("recovers what was missed from Last-Event-ID on every durable channel of the stream", async () => {
    const roomA = `room:${uniqueId("a")}`;
    const roomB = `room:${uniqueId("b")}`;
    const token = await signToken({ sub: "carol", channels: ["room:*"] });
    const first = await openReady(`${roomA},${roomB}`, bearer(token));
    const a1 = await publish(roomA, "message.created", { n: 1 });
    const lastSeen = await first.next((m) => m.data.id === a1);
    first.close();

    const missed = [await publish(roomB, "message.created", { n: 2 }), await publish(roomA, "message.created", { n: 3 }), await publish(roomB, "message.created", { n: 4 })];
    // The worker stores them before the new stream reads history: wait until a fresh stream could see the last one.
    const probe = await openReady(roomB, bearer(token), `&lastEventId=${lastSeen.id}`);
    await probe.next((m) => m.data.id === missed[2]);
    probe.close();

    const second = await openReady(`${roomA},${roomB}`, { ...bearer(token), "last-event-id": lastSeen.id! });
    await second.next((m) => m.data.id === missed[2]);
    const recovered = second.events();
    expect(recovered.map((m) => m.data.id).sort()).toEqual([...missed].sort());
    expect(recovered.some((m) => m.data.id === a1)).toBe(false);
    const oks = second.messages.filter((m) => m.data.op === "ok");
    expect(oks.map((m) => m.data.recovered)).toEqual([true, true]);
    second.close();
  });

  it("cuts off a client that stops reading, without slowing the others", async () => {
    const channel = `post:${uniqueId("slow")}`;
    const token = await signToken({ sub: "dave" });
    const slow = await openReady(channel, bearer(token));
    const fast = await openReady(channel, bearer(token));
    slow.pause();
    const payload = "x".repeat(32_000);
    const ids: string[] = [];
    // 500 × 32 KB = 16 MB: far over the kernel's socket buffers plus SEND_BUFFER_BYTES (256 KiB).
    for (let i = 0; i < 500; i++) ids.push(await publish(channel, "bulk.item", { i, payload }));
    await fast.next((m) => m.data.id === ids.at(-1), 30_000);
    expect(fast.events(channel).map((m) => m.data.id)).toEqual(ids);
    const metrics = async () => (await fetch(`${gateway().httpUrl}/metrics`)).text();
    await waitFor(async () => /sobranie_connections_closed_total\{[^}]*code="4013"[^}]*\} [1-9]/.test(await metrics()), 15_000, "a 4013 close counted");
    slow.resume();
    const closeMessage = await slow.next((m) => m.data.op === "close", 30_000);
    expect(closeMessage).toMatchObject({ event: "sobranie.close", data: { code: 4013 } });
    expect(slow.events(channel).length).toBeLessThan(ids.length);
    fast.close();
  }, 120_000);

  it("counts open streams in sobranie_sse_connections_active", async () => {
    const gauge = async () => Number(/^sobranie_sse_connections_active(?:\{[^}]*\})? (\d+)/m.exec(await (await fetch(`${gateway().httpUrl}/metrics`)).text())?.[1]);
    await waitFor(async () => (await gauge()) === 0, 10_000, "no streams open");
    const client = await openReady("post:count", bearer(await signToken()));
    expect(await gauge()).toBe(1);
    client.close();
    await waitFor(async () => (await gauge()) === 0, 10_000, "the stream counted as closed");
  });
});

/** The keep-alive comment runs every min(15 s, HEARTBEAT_MS); shortened here so the test sees several. */
describe("SSE keep-alive comments", () => {
  const gateway = suiteGateway({ HEARTBEAT_MS: "300", PRESENCE_TTL_MS: "1200" }, { embedded: true });

  it("writes a comment line every interval, and a reader who never sends anything outlives the presence TTL", async () => {
    const url = `${gateway().httpUrl}/realtime/events?channels=post:keepalive`;
    const client = await SseTestClient.open(url, { authorization: `Bearer ${await signToken({ sub: uniqueId("sse") })}` });
    await client.next((message) => message.data.op === "ok");
    const startedMs = Date.now();
    await waitFor(() => client.comments >= 5, 10_000, "five keep-alive comments");
    // Five comments take at least four intervals (the first may come early).
    expect(Date.now() - startedMs).toBeGreaterThanOrEqual(4 * 300 - 50);
    expect(client.ended).toBe(false);
    client.close();
  });
});
