import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { SignJWT } from "jose";
import { TestPublisher } from "../support/amqp-tools.js";
import { GatewayProcess } from "../support/gateway-process.js";
import { createRabbitVhost, type RabbitVhost } from "../support/rabbit-vhost.js";
import { uniqueId } from "../support/test-gateway.js";
import { SseTestClient } from "../support/sse-client.js";
import { waitFor } from "../support/wait-for.js";
import { TestClient } from "../support/ws-client.js";
import { RawHttpClient } from "../support/raw-client.js";
import { BUN_API_KEY as API_KEY, BUN_JWT_SECRET as JWT_SECRET, START_TIMEOUT_MS, startBunGateway, type BunGateway } from "./bun-gateway.js";

// Run with `npm run test:bun` (after `npm run build`): the gateway is
// `bun dist/src/main.js` in a child process (bun-gateway.ts); the clients
// are this process's.
// Named .bun.ts, not .test.ts, so vitest (on Node) leaves it alone.

const CASE_TIMEOUT_MS = 60_000;

async function signToken(sub: string): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(sub).setIssuedAt().setExpirationTime("1h").sign(new TextEncoder().encode(JWT_SECRET));
}

async function gauge(gateway: BunGateway, name: string): Promise<number> {
  const text = await (await fetch(`${gateway.httpUrl}/metrics`)).text();
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, "m").exec(text)?.[1]);
}

async function closedCount(gateway: BunGateway, code: number): Promise<number> {
  const text = await (await fetch(`${gateway.httpUrl}/metrics`)).text();
  return Number(new RegExp(`^sobranie_connections_closed_total\\{[^}]*code="${code}"[^}]*\\} (\\d+)`, "m").exec(text)?.[1] ?? 0);
}

describe("the gateway on Bun, with RabbitMQ", () => {
  let vhost: RabbitVhost | undefined;
  let gateway: BunGateway;
  let publisher: TestPublisher;

  beforeAll(async () => {
    vhost = await createRabbitVhost("bun-gateway");
    gateway = await startBunGateway({ RABBITMQ_URL: vhost.url, ROLE: "gateway" });
    publisher = await TestPublisher.open(vhost.url);
  }, START_TIMEOUT_MS);

  afterAll(async () => {
    await publisher?.close();
    const code = await gateway?.stop();
    await GatewayProcess.killAll();
    await vhost?.drop();
    expect(code).toBe(0);
  }, START_TIMEOUT_MS);

  it("answers /healthz and /readyz 200", async () => {
    expect((await fetch(`${gateway.httpUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${gateway.httpUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, checks: { broker: true } });
  });

  it("delivers an event published to sobranie.events to a WebSocket subscriber and an SSE stream", async () => {
    const id = uniqueId("x");
    const channel = `post:${id}`;
    const token = await signToken("ann");
    const ws = await TestClient.connect(gateway.wsUrl, { token });
    expect(ws.frames[0]).toMatchObject({ op: "welcome", maxFrameBytes: 65_536 });
    expect(await ws.request({ op: "subscribe", channel })).toMatchObject({ op: "ok" });
    const sse = await SseTestClient.open(`${gateway.httpUrl}/realtime/events?channels=${channel}`, { authorization: `Bearer ${token}` });
    await sse.next((message) => message.data.op === "ok");

    await publisher.publish(`post.${id}.comment.created`, { id: "evt-1", type: "comment.created", data: { text: "hello" } });

    expect(await ws.next((frame) => frame.op === "event")).toMatchObject({ op: "event", channel, id: "evt-1", type: "comment.created", data: { text: "hello" } });
    const streamed = await sse.next((message) => message.data.op === "event");
    expect(streamed).toMatchObject({ event: "comment.created", data: { op: "event", channel, id: "evt-1", data: { text: "hello" } } });
    ws.close();
    sse.close();
  }, CASE_TIMEOUT_MS);

  it("notices a WebSocket client and an SSE client that leave", async () => {
    const open = async (name: string): Promise<number> => gauge(gateway, `sobranie_${name}_connections_active`);
    await waitFor(async () => (await open("ws")) === 0 && (await open("sse")) === 0, 5_000, "the earlier cases' clients gone");
    const token = await signToken("dan");
    const ws = await TestClient.connect(gateway.wsUrl, { token });
    const sse = await SseTestClient.open(`${gateway.httpUrl}/realtime/events?channels=post:leave`, { authorization: `Bearer ${token}` });
    await sse.next((message) => message.data.op === "ok");
    expect(await open("ws")).toBe(1);
    expect(await open("sse")).toBe(1);
    ws.close();
    sse.close();
    await waitFor(async () => (await open("ws")) === 0, 5_000, "the WebSocket closed");
    await waitFor(async () => (await open("sse")) === 0, 5_000, "the SSE stream aborted");
  });

  it("answers a frame over 64 KiB with too_large and closes 1009", async () => {
    const ws = await TestClient.connect(gateway.wsUrl, { token: await signToken("ann") });
    ws.sendRaw(JSON.stringify({ op: "ping", pad: "x".repeat(70 * 1024) }));
    expect(await ws.next((frame) => frame.op === "error")).toMatchObject({ code: "too_large" });
    expect(await ws.closed).toMatchObject({ code: 1009 });
  });

  it("refuses an upgrade without a token with 401 before upgrading", async () => {
    const raw = await RawHttpClient.websocket(gateway.port, "/realtime/ws");
    await waitFor(() => raw.ended || raw.start.includes("}"), 5_000, "a refusal");
    expect(raw.status).toBe(401);
    expect(raw.start.includes('"code":"unauthorized"')).toBe(true);
    raw.close();
  });

  it("serves Prometheus text on /metrics", async () => {
    const response = await fetch(`${gateway.httpUrl}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")?.startsWith("text/plain")).toBe(true);
    const text = await response.text();
    expect(/^# TYPE sobranie_connections_closed_total counter$/m.test(text)).toBe(true);
    expect(/^sobranie_upgrades_rejected_total\{[^}]*reason="unauthorized"[^}]*\} [1-9]/m.test(text)).toBe(true);
  });
});

describe("the gateway on Bun, embedded (no RABBITMQ_URL)", () => {
  let gateway: BunGateway;

  beforeAll(async () => {
    gateway = await startBunGateway({ SEND_BUFFER_BYTES: "262144" });
  }, START_TIMEOUT_MS);

  afterAll(async () => {
    const code = await gateway?.stop();
    await GatewayProcess.killAll();
    expect(code).toBe(0);
  }, START_TIMEOUT_MS);

  async function publish(channel: string, data: unknown): Promise<string> {
    const response = await fetch(`${gateway.httpUrl}/api/v1/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ channel, type: "bulk.item", data }),
    });
    expect(response.status).toBe(202);
    return ((await response.json()) as { id: string }).id;
  }

  it("serves the demo page and the SDK bundle", async () => {
    const page = await fetch(`${gateway.httpUrl}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect((await page.text()).includes("<html")).toBe(true);
    expect((await fetch(`${gateway.httpUrl}/client/sobranie-client.js`)).status).toBe(200);
    expect((await fetch(`${gateway.httpUrl}/no/such/page`)).status).toBe(404);
  });

  it("reads a POST body and refuses one over 64 KiB with 413", async () => {
    expect((await publish("post:body", { text: "hi" })).length).toBeGreaterThan(0);
    const response = await fetch(`${gateway.httpUrl}/api/v1/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ channel: "post:body", type: "big", data: { pad: "x".repeat(70 * 1024) } }),
    });
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: { code: "too_large" } });
  });

  it("closes a WebSocket that stops reading with 4013 while a fast one gets everything", async () => {
    const channel = `post:${uniqueId("slow")}`;
    const token = await signToken("bob");
    const fast = await TestClient.connect(gateway.wsUrl, { token });
    await fast.request({ op: "subscribe", channel });
    const slow = await RawHttpClient.websocket(gateway.port, `/realtime/ws?token=${token}`);
    await waitFor(() => slow.status === 101, 5_000, "the slow client's upgrade");
    slow.socket.write(maskedText(JSON.stringify({ op: "subscribe", ref: 1, channel })));
    await waitFor(() => slow.start.includes('"op":"ok"'), 5_000, "the slow client's subscription");
    slow.pause();
    const before = await closedCount(gateway, 4013);

    // Far over the loopback socket buffers plus SEND_BUFFER_BYTES (256 KiB).
    const ids: string[] = [];
    const pad = "x".repeat(32_000);
    for (let i = 0; i < 400; i++) ids.push(await publish(channel, { i, pad }));
    await fast.next((frame) => frame.id === ids.at(-1), 30_000);
    expect(fast.events(channel).length).toBe(ids.length);
    await waitFor(async () => (await closedCount(gateway, 4013)) > before, 15_000, "a 4013 close counted");
    slow.resume();
    await waitFor(() => slow.closeCode() !== undefined, 30_000, "the close frame behind the buffered events");
    expect(slow.closeCode()).toBe(4013);
    slow.close();
    fast.close();
  }, CASE_TIMEOUT_MS);

  it("cuts off an SSE stream that stops reading, with its close message after the buffered events", async () => {
    const channel = `post:${uniqueId("slow-sse")}`;
    const token = await signToken("carol");
    const fast = await SseTestClient.open(`${gateway.httpUrl}/realtime/events?channels=${channel}`, { authorization: `Bearer ${token}` });
    await fast.next((message) => message.data.op === "ok");
    const slow = await RawHttpClient.get(gateway.port, `/realtime/events?channels=${channel}`, { Authorization: `Bearer ${token}` });
    await waitFor(() => slow.start.includes("sobranie.ok"), 5_000, "the slow stream's subscription");
    slow.pause();
    const before = await closedCount(gateway, 4013);

    const ids: string[] = [];
    const pad = "x".repeat(32_000);
    for (let i = 0; i < 400; i++) ids.push(await publish(channel, { i, pad }));
    await fast.next((message) => message.data.id === ids.at(-1), 30_000);
    expect(fast.events(channel).length).toBe(ids.length);
    await waitFor(async () => (await closedCount(gateway, 4013)) > before, 15_000, "a 4013 close counted");
    slow.resume();
    await waitFor(() => slow.ended || slow.end.includes("event: sobranie.close"), 30_000, "the close message");
    expect(/event: sobranie\.close\ndata: \{[^\n]*"code":4013/.test(slow.end)).toBe(true);
    slow.close();
    fast.close();
  }, CASE_TIMEOUT_MS);
});

/** One client text frame (clients must mask). */
function maskedText(text: string): Buffer {
  const payload = Buffer.from(text);
  if (payload.length > 125) throw new Error("maskedText: short frames only");
  const mask = randomBytes(4);
  const frame = Buffer.alloc(6 + payload.length);
  frame[0] = 0x81;
  frame[1] = 0x80 | payload.length;
  mask.copy(frame, 2);
  for (let i = 0; i < payload.length; i++) frame[6 + i] = payload[i]! ^ mask[i % 4]!;
  return frame;
}
