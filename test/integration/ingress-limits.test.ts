import { describe, expect, it } from "vitest";
import { suiteGateway } from "../support/suite-gateway.js";
import { signToken, uniqueId } from "../support/test-gateway.js";
import { TestClient, UpgradeRefused } from "../support/ws-client.js";

describe("ingress limits (docs/protocol.md §5)", () => {
  const gateway = suiteGateway({ ABUSE_CLOSE_MS: "600", MAX_CONNECTIONS_PER_USER: "3" });

  const connect = async (sub = uniqueId("u")) => TestClient.connect(gateway().wsUrl, { token: await signToken({ sub }) });

  it("answers a frame over 64 KiB with too_large echoing its ref, then closes 1009", async () => {
    const client = await connect();
    client.sendRaw(JSON.stringify({ op: "ping", ref: 7, pad: "x".repeat(65_536) }));
    expect(await client.next((f) => f.op === "error")).toMatchObject({ code: "too_large", ref: 7 });
    expect(await client.closed).toMatchObject({ code: 1009 });
  });

  it("accepts a frame of exactly 64 KiB", async () => {
    const client = await connect();
    const frame = JSON.stringify({ op: "ping", ref: 1, pad: "" });
    client.sendRaw(JSON.stringify({ op: "ping", ref: 1, pad: "x".repeat(65_536 - frame.length) }));
    expect(await client.next((f) => f.ref === 1)).toMatchObject({ op: "pong" });
    client.close();
  });

  it("answers invalid JSON, unknown ops, bad fields and binary frames with bad_request and stays usable", async () => {
    const client = await connect();
    client.sendRaw("{not json");
    expect(await client.next((f) => f.op === "error")).toMatchObject({ code: "bad_request" });
    expect(await client.request({ op: "teleport" })).toMatchObject({ op: "error", code: "bad_request" });
    expect(await client.request({ op: "subscribe", channel: 42 })).toMatchObject({ op: "error", code: "bad_request" });
    client.sendRaw(Buffer.from([1, 2, 3]));
    expect(await client.next((f) => f.op === "error")).toMatchObject({ code: "bad_request" });
    expect(await client.request({ op: "ping" })).toMatchObject({ op: "pong" });
    client.close();
  });

  it("rate-limits a connection with retryAfterMs, echoing the refused frame's ref without acting on it", async () => {
    const client = await connect();
    const channel = `post:${uniqueId("rl")}`;
    for (let i = 0; i < 40; i++) client.send({ op: "ping", ref: 1000 + i });
    client.send({ op: "subscribe", ref: 1, channel });
    client.sendRaw("{not json");
    const refused = await client.next((f) => f.op === "error" && f.code === "rate_limited");
    expect(refused).toMatchObject({ ref: 1 });
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    // A refused frame that is not even JSON has no ref to echo, and still gets its one reply.
    const unreadable = await client.next((f) => f.op === "error" && f.code === "rate_limited" && f !== refused);
    expect(unreadable).not.toHaveProperty("ref");
    const pongs = await Promise.all(Array.from({ length: 40 }, (_, i) => client.next((f) => f.ref === 1000 + i)));
    expect(pongs.every((f) => f.op === "pong")).toBe(true);
    expect(client.frames.filter((f) => f.ref === 1)).toEqual([refused]);
    client.close();
  });

  it("limits a user across their connections on the node", async () => {
    const sub = uniqueId("u");
    const [a, b, c] = [await connect(sub), await connect(sub), await connect(sub)];
    // 3 connections × burst 40 = 120 > the user's burst of 100.
    for (const client of [a, b, c]) for (let i = 0; i < 40; i++) client.send({ op: "ping" });
    const limited = await Promise.race([a, b, c].map((client) => client.next((f) => f.code === "rate_limited")));
    expect(limited).toMatchObject({ op: "error", code: "rate_limited" });
    for (const client of [a, b, c]) client.close();
  });

  it("closes 4029 after sustained abuse", async () => {
    const client = await connect();
    const flood = setInterval(() => {
      if (client.socket.readyState === client.socket.OPEN) for (let i = 0; i < 20; i++) client.send({ op: "ping" });
    }, 20);
    try {
      expect(await client.closed).toMatchObject({ code: 4029 });
    } finally {
      clearInterval(flood);
    }
  });

  it("refuses a user's connection past the per-user limit with HTTP 429", async () => {
    const sub = uniqueId("u");
    const open = [await connect(sub), await connect(sub), await connect(sub)];
    const error = await connect(sub).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UpgradeRefused);
    expect((error as UpgradeRefused).status).toBe(429);
    open[0]!.close();
    await open[0]!.closed;
    const again = await connect(sub);
    again.close();
    for (const client of open) client.close();
  });
});
