import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ChannelCursor, SseParser, backoffDelayMs, connect, tokenExpiryMs, type ConnectOptions, type RealtimeEvent, type WebSocketLike } from "@sobranie/client";

/** A WebSocket double: the test plays the server through `deliver` and `drop`. */
class FakeWebSocket implements WebSocketLike {
  static sockets: FakeWebSocket[] = [];
  readyState = 1;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly sent: Array<Record<string, unknown>> = [];

  constructor(readonly url: string) {
    FakeWebSocket.sockets.push(this);
  }
  static get last(): FakeWebSocket {
    return FakeWebSocket.sockets.at(-1)!;
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close(): void {
    this.readyState = 3;
  }
  deliver(frame: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  welcome(heartbeatMs = 25_000): void {
    this.deliver({ op: "welcome", session: "s", node: "n", heartbeatMs, ttlMs: 60_000, maxFrameBytes: 65_536 });
  }
  drop(code: number, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  /** Answers every request of op `op` sent so far with ok + `fields`. */
  answer(op: string, fields: Record<string, unknown> = {}): void {
    for (const frame of this.sent.filter((f) => f.op === op)) this.deliver({ op: "ok", ref: frame.ref, ...fields });
  }
  ofOp(op: string): Array<Record<string, unknown>> {
    return this.sent.filter((frame) => frame.op === op);
  }
}

const event = (seq: number | undefined, id = `e${seq}`) => ({ op: "event", channel: "room:1", id, ...(seq === undefined ? {} : { seq }), type: "t", data: { seq }, ts: "t" });

function jwt(expSec: number, claims: Record<string, unknown> = {}): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${encode({ alg: "HS256" })}.${encode({ sub: "u", exp: expSec, ...claims })}.sig`;
}

describe("backoff and dedupe", () => {
  it("draws each delay uniformly below an exponentially growing, capped ceiling", () => {
    const options = { initialDelayMs: 100, maxDelayMs: 1_000 };
    expect(backoffDelayMs(0, options, () => 0.999)).toBe(99);
    expect(backoffDelayMs(3, options, () => 0.999)).toBe(799);
    expect(backoffDelayMs(10, options, () => 0.999)).toBe(999);
    expect(backoffDelayMs(100, options, () => 0.5)).toBe(500);
    expect(backoffDelayMs(5, options, () => 0)).toBe(0);
  });

  it("drops an event seen before, by seq and by id", () => {
    const cursor = new ChannelCursor(2);
    expect(cursor.accept("a", 5)).toBe(true);
    expect(cursor.accept("a", 5)).toBe(false);
    expect(cursor.accept("b", 4)).toBe(false);
    expect(cursor.accept("live-1", undefined)).toBe(true);
    expect(cursor.accept("live-1", undefined)).toBe(false);
    expect(cursor.lastSeq).toBe(5);
  });

  it("reads exp from a JWT without verifying it", () => {
    expect(tokenExpiryMs(jwt(1_700_000_000))).toBe(1_700_000_000_000);
    expect(tokenExpiryMs("garbage")).toBeUndefined();
  });

  it("parses an SSE stream split anywhere, multi-byte characters included", () => {
    const frames: Array<{ frame: unknown; id: string | undefined }> = [];
    const parser = new SseParser(undefined, (frame, id) => frames.push({ frame, id }));
    const text = ': hi\n\nevent: t\nid: 7\ndata: {"op":"event","data":"żółw ✓"}\n\nevent: sobranie.ok\r\ndata: {"op":"ok"}\r\n\r\n';
    const bytes = new TextEncoder().encode(text);
    for (let i = 0; i < bytes.length; i += 3) parser.push(bytes.slice(i, i + 3));
    expect(frames).toEqual([
      { frame: { op: "event", data: "żółw ✓" }, id: "7" },
      { frame: { op: "ok" }, id: "7" },
    ]);
  });

  it("dispatches a message whose lines end in CR at once, and reads a CRLF split across chunks as one line end", () => {
    const frames: unknown[] = [];
    const parser = new SseParser(undefined, (frame) => frames.push(frame));
    parser.push(new TextEncoder().encode('data: {"op":"ok"}\r\r'));
    expect(frames).toEqual([{ op: "ok" }]);
    parser.push(new TextEncoder().encode('data: {"op":\r'));
    parser.push(new TextEncoder().encode('\ndata: "pong"}\r\n\r\n'));
    expect(frames).toEqual([{ op: "ok" }, { op: "pong" }]);
  });
});

describe("RealtimeClient over a fake WebSocket", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeWebSocket.sockets = [];
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A WebSocket client with a 1 s backoff ceiling doubling to 8 s, its first socket opened (not yet welcomed). */
  const open = async (options: Partial<Pick<ConnectOptions, "token" | "random" | "getSubscriptionToken">> = {}) => {
    const client = connect({
      url: "http://gw.test",
      token: "tok",
      WebSocket: FakeWebSocket,
      random: () => 0.5,
      reconnect: { initialDelayMs: 1_000, maxDelayMs: 8_000 },
      transport: "websocket",
      ...options,
    });
    await vi.advanceTimersByTimeAsync(0);
    return client;
  };
  /** The server drops the socket (1006); `backoffMs` later the client is on a new one, welcomed. */
  const dropAndWelcomeAgain = async (backoffMs: number, heartbeatMs?: number) => {
    FakeWebSocket.last.drop(1006);
    await vi.advanceTimersByTimeAsync(backoffMs);
    FakeWebSocket.last.welcome(heartbeatMs);
  };

  it("connects with the token in the URL, subscribes after welcome and delivers events", async () => {
    const client = await open();
    expect(FakeWebSocket.last.url).toBe("ws://gw.test/realtime/ws?token=tok");
    const received: RealtimeEvent[] = [];
    const subscribed = client.subscribe("room:1", (e) => received.push(e), { presence: true });
    FakeWebSocket.last.welcome();
    expect(FakeWebSocket.last.ofOp("subscribe")).toEqual([{ op: "subscribe", channel: "room:1", presence: true, ref: 1 }]);
    FakeWebSocket.last.answer("subscribe", { recovered: false, missed: 0 });
    await expect(subscribed).resolves.toEqual({ recovered: false, missed: 0 });
    FakeWebSocket.last.deliver(event(1));
    expect(received.map((e) => e.seq)).toEqual([1]);
    expect(client.state).toBe("connected");
    client.close();
  });

  it("delivers presence frames: join, leave and the members summary of a busy room", async () => {
    const client = await open();
    const seen: unknown[] = [];
    client.on("join", (e) => seen.push(["join", e]));
    client.on("leave", (e) => seen.push(["leave", e]));
    client.on("members", (e) => seen.push(["members", e]));
    FakeWebSocket.last.welcome();
    FakeWebSocket.last.deliver({ op: "join", channel: "room:1", user: "u1", info: { name: "U" } });
    FakeWebSocket.last.deliver({ op: "members", channel: "room:1", count: 900, joined: 850, left: 49 });
    FakeWebSocket.last.deliver({ op: "leave", channel: "room:1", user: "u1" });
    expect(seen).toEqual([
      ["join", { channel: "room:1", user: "u1", info: { name: "U" } }],
      ["members", { channel: "room:1", count: 900, joined: 850, left: 49 }],
      ["leave", { channel: "room:1", user: "u1" }],
    ]);
    client.close();
  });

  it("reconnects with backoff, resubscribes with since = the last seq, and drops what it already delivered", async () => {
    const client = await open();
    const received: string[] = [];
    client.subscribe("room:1", (e) => received.push(e.id)).catch(() => {});
    FakeWebSocket.last.welcome();
    FakeWebSocket.last.answer("subscribe", { recovered: false, missed: 0 });
    FakeWebSocket.last.deliver(event(10));
    FakeWebSocket.last.deliver(event(11));
    FakeWebSocket.last.drop(1006);
    expect(client.state).toBe("reconnecting");
    // random 0.5 of a 1 s ceiling: 500 ms.
    await vi.advanceTimersByTimeAsync(499);
    expect(FakeWebSocket.sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeWebSocket.sockets).toHaveLength(2);
    FakeWebSocket.last.welcome();
    expect(FakeWebSocket.last.ofOp("subscribe")[0]).toMatchObject({ channel: "room:1", since: 11 });
    FakeWebSocket.last.answer("subscribe", { recovered: true, missed: 2 });
    FakeWebSocket.last.deliver(event(11));
    FakeWebSocket.last.deliver(event(12));
    FakeWebSocket.last.deliver(event(12));
    expect(received).toEqual(["e10", "e11", "e12"]);
    client.close();
  });

  it("doubles the backoff ceiling on each failed attempt and resets it after welcome", async () => {
    const client = await open({ random: () => 0.999 });
    FakeWebSocket.last.welcome();
    FakeWebSocket.last.drop(1006);
    await vi.advanceTimersByTimeAsync(999);
    expect(FakeWebSocket.sockets).toHaveLength(2);
    FakeWebSocket.last.drop(1006);
    // Second attempt: ceiling 2 s, so 0.999 of it is 1998 ms.
    await vi.advanceTimersByTimeAsync(1_997);
    expect(FakeWebSocket.sockets).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeWebSocket.sockets).toHaveLength(3);
    FakeWebSocket.last.welcome();
    FakeWebSocket.last.drop(1012);
    await vi.advanceTimersByTimeAsync(999);
    expect(FakeWebSocket.sockets).toHaveLength(4);
    client.close();
  });

  it("emits gap for a subscribed channel's gap frame and for a resubscription that could not recover everything", async () => {
    const client = await open();
    const gaps: unknown[] = [];
    client.on("gap", (gap) => gaps.push(gap));
    client.subscribe("room:1", () => {}).catch(() => {});
    FakeWebSocket.last.welcome();
    FakeWebSocket.last.answer("subscribe", { recovered: false, missed: 0 });
    FakeWebSocket.last.deliver(event(3));
    FakeWebSocket.last.deliver({ op: "gap", channel: "room:1", reason: "interrupted" });
    FakeWebSocket.last.deliver({ op: "gap", channel: "post:9", reason: "interrupted" });
    await dropAndWelcomeAgain(500);
    FakeWebSocket.last.answer("subscribe", { recovered: false, missed: 4 });
    await vi.advanceTimersByTimeAsync(0);
    expect(gaps).toEqual([
      { channel: "room:1", reason: "interrupted" },
      { channel: "room:1", reason: "incomplete", missed: 4 },
    ]);
    client.close();
  });

  it("honours a reconnect frame's afterMs", async () => {
    const client = await open();
    FakeWebSocket.last.welcome();
    FakeWebSocket.last.deliver({ op: "reconnect", afterMs: 5_000, reason: "drain" });
    await vi.advanceTimersByTimeAsync(4_999);
    expect(FakeWebSocket.sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeWebSocket.sockets).toHaveLength(2);
    client.close();
  });

  it("gets a new token after close 4001, and refreshes before exp with the refresh op", async () => {
    const nowSec = Math.floor(Date.now() / 1000);
    let issued = 0;
    const provider = vi.fn(async () => jwt(nowSec + 600 + 600 * issued++));
    const client = await open({ token: provider });
    FakeWebSocket.last.welcome(1_000_000);
    expect(provider).toHaveBeenCalledTimes(1);
    // Lifetime 600 s: refresh a tenth (60 s) before exp.
    await vi.advanceTimersByTimeAsync(539_000);
    expect(FakeWebSocket.last.ofOp("refresh")).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(provider).toHaveBeenCalledTimes(2);
    expect(FakeWebSocket.last.ofOp("refresh")[0]).toMatchObject({ token: jwt(nowSec + 1200) });
    FakeWebSocket.last.drop(4001, "token expired");
    await vi.advanceTimersByTimeAsync(1_000);
    expect(provider).toHaveBeenCalledTimes(3);
    expect(FakeWebSocket.last.url).toContain(encodeURIComponent(jwt(nowSec + 1800)));
    client.close();
  });

  it("schedules the refresh of a token valid for months near its exp, not at once", async () => {
    const nowSec = Math.floor(Date.now() / 1000);
    const sixtyDaysSec = 60 * 86_400;
    const provider = vi.fn(async () => jwt(nowSec + sixtyDaysSec));
    const client = await open({ token: provider });
    FakeWebSocket.last.welcome(1_000_000_000);
    // A plain setTimeout of 60 days minus the margin would overflow and fire at once.
    // Every 10 days the server answers something, so the heartbeat check keeps the connection.
    for (let day = 0; day < 50; day += 10) {
      await vi.advanceTimersByTimeAsync(10 * 86_400_000);
      FakeWebSocket.last.deliver({ op: "pong" });
    }
    expect(FakeWebSocket.sockets).toHaveLength(1);
    expect(FakeWebSocket.last.ofOp("refresh")).toHaveLength(0);
    expect(provider).toHaveBeenCalledTimes(1);
    // Refreshes a minute before exp (the margin is at most 60 s).
    await vi.advanceTimersByTimeAsync((sixtyDaysSec - 50 * 86_400 - 61) * 1_000);
    expect(FakeWebSocket.last.ofOp("refresh")).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(provider).toHaveBeenCalledTimes(2);
    client.close();
  });

  it("drops a subscription the server ended, emits unsubscribed, and does not resubscribe after a reconnect", async () => {
    const client = await open();
    const ended: unknown[] = [];
    client.on("unsubscribed", (info) => ended.push(info));
    const received: RealtimeEvent[] = [];
    client.subscribe("room:1", (e) => received.push(e)).catch(() => {});
    client.subscribe("room:2", () => {}).catch(() => {});
    FakeWebSocket.last.welcome();
    FakeWebSocket.last.answer("subscribe", { recovered: false, missed: 0 });
    FakeWebSocket.last.deliver({ op: "unsubscribed", channel: "room:1", reason: "revoked" });
    FakeWebSocket.last.deliver({ op: "unsubscribed", channel: "post:9", reason: "revoked" });
    FakeWebSocket.last.deliver(event(1));
    expect(received).toEqual([]);
    expect(ended).toEqual([{ channel: "room:1", reason: "revoked" }]);
    await dropAndWelcomeAgain(1_000);
    expect(FakeWebSocket.last.ofOp("subscribe").map((frame) => frame.channel)).toEqual(["room:2"]);
    client.close();
  });

  it("treats close 4003 as final: no reconnect, an error event with code revoked", async () => {
    const client = await open();
    const errors: Array<{ code: string }> = [];
    client.on("error", (error) => errors.push(error));
    FakeWebSocket.last.welcome();
    FakeWebSocket.last.drop(4003, "banned");
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeWebSocket.sockets).toHaveLength(1);
    expect(errors.map((error) => error.code)).toContain("revoked");
    expect(client.state).toBe("closed");
  });

  it("pings every heartbeatMs and reconnects after two silent intervals", async () => {
    const client = await open();
    FakeWebSocket.last.welcome(1_000);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(FakeWebSocket.last.ofOp("ping")).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(2_000);
    // No frame for over 2 s: a new connection is opened at once.
    expect(FakeWebSocket.sockets).toHaveLength(2);
    client.close();
  });

  it("rejects a refused subscription and forgets the channel", async () => {
    const client = await open();
    const subscribed = client.subscribe("user:other", () => {});
    FakeWebSocket.last.welcome();
    const frame = FakeWebSocket.last.ofOp("subscribe")[0]!;
    FakeWebSocket.last.deliver({ op: "error", ref: frame.ref, code: "forbidden", message: "not allowed" });
    await expect(subscribed).rejects.toMatchObject({ code: "forbidden" });
    await dropAndWelcomeAgain(1_000);
    expect(FakeWebSocket.last.ofOp("subscribe")).toHaveLength(0);
    client.close();
  });

  it("falls back to SSE after WebSocket attempts that never reach welcome", async () => {
    const fetches: string[] = [];
    const fetcher = vi.fn(async (url: string) => {
      fetches.push(url);
      return new Promise<never>(() => {});
    });
    const client = connect({ url: "http://gw.test", token: "tok", WebSocket: FakeWebSocket, fetch: fetcher, random: () => 0 });
    client.subscribe("room:1", () => {}).catch(() => {});
    await vi.advanceTimersByTimeAsync(0);
    FakeWebSocket.last.drop(1006);
    await vi.advanceTimersByTimeAsync(0);
    FakeWebSocket.last.drop(1006);
    await vi.advanceTimersByTimeAsync(0);
    expect(client.transportKind).toBe("sse");
    expect(fetches).toEqual(["http://gw.test/realtime/events?channels=room%3A1"]);
    await expect(client.publish("room:1", "t", {})).rejects.toMatchObject({ code: "unsupported" });
    client.close();
  });

  describe("subscription tokens (getSubscriptionToken)", () => {
    /** The app's source: a token for vip channels (the nth issued for a channel expiring 30 s later each), none for the rest. */
    const tokenSource = () => {
      const issued = new Map<string, number>();
      const nowSec = Math.floor(Date.now() / 1000);
      return vi.fn(async (channel: string) => {
        if (!channel.startsWith("vip:")) return null;
        const n = (issued.get(channel) ?? 0) + 1;
        issued.set(channel, n);
        return jwt(nowSec + 30 * n, { channel, n });
      });
    };
    /** Welcomes the socket (its heartbeat far off) and, once the tokens are fetched, answers every subscribe with a fresh ok. */
    const welcomeAndAnswerSubscribes = async () => {
      FakeWebSocket.last.welcome(1_000_000);
      await vi.advanceTimersByTimeAsync(0);
      FakeWebSocket.last.answer("subscribe", { recovered: false, missed: 0 });
    };

    it("asks for every channel's token at subscribe and sends it; a channel it has none for is subscribed without", async () => {
      const source = tokenSource();
      const client = await open({ getSubscriptionToken: source });
      client.subscribe("vip:1", () => {}).catch(() => {});
      client.subscribe("room:1", () => {}).catch(() => {});
      FakeWebSocket.last.welcome();
      await vi.advanceTimersByTimeAsync(0);
      expect(source.mock.calls.map(([channel]) => channel)).toEqual(["vip:1", "room:1"]);
      const frames = FakeWebSocket.last.ofOp("subscribe");
      expect(frames.find((frame) => frame.channel === "vip:1")).toMatchObject({ token: await source.mock.results[0]!.value });
      expect(frames.find((frame) => frame.channel === "room:1")).not.toHaveProperty("token");
      client.close();
    });

    it("refreshes a channel's token before its exp with refresh {channel, token}, then the new one before its own", async () => {
      const source = tokenSource();
      const client = await open({ getSubscriptionToken: source });
      client.subscribe("vip:1", () => {}).catch(() => {});
      await welcomeAndAnswerSubscribes();
      // About 30 s left: refreshed a tenth (about 3 s) before exp, and not before 26 s.
      await vi.advanceTimersByTimeAsync(26_000);
      expect(FakeWebSocket.last.ofOp("refresh")).toHaveLength(0);
      await vi.advanceTimersByTimeAsync(4_000);
      const [refresh] = FakeWebSocket.last.ofOp("refresh");
      expect(refresh).toMatchObject({ op: "refresh", channel: "vip:1", token: await source.mock.results[1]!.value });
      FakeWebSocket.last.answer("refresh");
      // The second token expires 60 s after the start: its refresh comes before that.
      await vi.advanceTimersByTimeAsync(30_000);
      expect(FakeWebSocket.last.ofOp("refresh").map((frame) => frame.token)).toEqual([await source.mock.results[1]!.value, await source.mock.results[2]!.value]);
      client.close();
    });

    // Dropped after the subscribe's ok was read, or before (the ok is read in a microtask): either way the old token's refresh dies with its connection.
    it.each([["read", true], ["not yet read", false]])("resubscribes after a reconnect with a fresh token, and stops refreshing the old one (ok %s at the drop)", async (_read, settle) => {
      const source = tokenSource();
      const client = await open({ getSubscriptionToken: source });
      client.subscribe("vip:1", () => {}).catch(() => {});
      await welcomeAndAnswerSubscribes();
      if (settle) await vi.advanceTimersByTimeAsync(0);
      await dropAndWelcomeAgain(1_000, 1_000_000);
      await vi.advanceTimersByTimeAsync(0);
      expect(FakeWebSocket.sockets).toHaveLength(2);
      expect(FakeWebSocket.last.ofOp("subscribe")).toEqual([expect.objectContaining({ channel: "vip:1", token: await source.mock.results[1]!.value })]);
      // The resubscribe is not answered yet: the first token's refresh (due at about 27 s) died with its connection.
      await vi.advanceTimersByTimeAsync(30_000);
      expect(source).toHaveBeenCalledTimes(2);
      expect(FakeWebSocket.last.ofOp("refresh")).toHaveLength(0);
      client.close();
    });

    it("reports a failed refresh as an error, and forgets the channel when the server then ends it with expired", async () => {
      let calls = 0;
      const nowSec = Math.floor(Date.now() / 1000);
      const source = vi.fn(async (channel: string) => {
        calls += 1;
        if (calls > 1) throw new Error("token service down");
        return jwt(nowSec + 30, { channel });
      });
      const client = await open({ getSubscriptionToken: source });
      const errors: string[] = [];
      const ended: unknown[] = [];
      client.on("error", (error) => errors.push(error.message));
      client.on("unsubscribed", (info) => ended.push(info));
      client.subscribe("vip:1", () => {}).catch(() => {});
      await welcomeAndAnswerSubscribes();
      await vi.advanceTimersByTimeAsync(28_000);
      expect(errors).toEqual(["subscription token refresh failed for vip:1"]);
      expect(FakeWebSocket.last.ofOp("refresh")).toHaveLength(0);
      FakeWebSocket.last.deliver({ op: "unsubscribed", channel: "vip:1", reason: "expired" });
      expect(ended).toEqual([{ channel: "vip:1", reason: "expired" }]);
      await dropAndWelcomeAgain(1_000);
      expect(FakeWebSocket.last.ofOp("subscribe")).toHaveLength(0);
      client.close();
    });
  });
});
