import { SignJWT } from "jose";
import WebSocket from "ws";
import { nowMs } from "./payload.js";

/** When a poll first met its condition: the time its answer arrived (`nowMs()`), and what it said. */
export interface Observation {
  at: number;
  count: number;
  polls: number;
}

const PING = JSON.stringify({ op: "ping" });
const OPEN_TIMEOUT_MS = 10_000;

/**
 * A runner-side connection to one gateway node that asks the `presence` op
 * for a channel's member count. It subscribes to nothing, so it is no member
 * and receives no join/leave frames: its answers are the node's own view of
 * the cluster. Above PRESENCE_MAX_LISTED the answer has `count` only
 * (`truncated: true`), which is all that is read here.
 *
 * It pings every `heartbeatMs` like any client, and reconnects on the next
 * question when the node closed it (a node whose event loop stalls longer
 * than its TTL closes even clients that pinged: `reconnects` counts that).
 */
export class PresenceObserver {
  private ref = 0;
  private readonly waiting = new Map<number, (count: number | null) => void>();
  private ws: WebSocket | null = null;
  private heartbeat: NodeJS.Timeout | undefined;
  private stopped = false;
  reconnects = 0;
  readonly closeCodes: Record<string, number> = {};

  private constructor(
    private readonly url: string,
    private readonly heartbeatMs: number,
  ) {}

  /** Connects as `user` (claim `room:*`, so `presence` is allowed) and waits for `welcome`. */
  static async connect(wsUrl: string, jwtSecret: string, user: string, heartbeatMs: number): Promise<PresenceObserver> {
    const token = await new SignJWT({ channels: ["room:*"] }).setProtectedHeader({ alg: "HS256" }).setSubject(user).setExpirationTime("2h").sign(new TextEncoder().encode(jwtSecret));
    const observer = new PresenceObserver(`${wsUrl}?token=${token}`, heartbeatMs);
    await observer.open();
    return observer;
  }

  /** The node's member count of `channel`; `null` on an error answer, no connection, or no answer within `timeoutMs`. */
  async count(channel: string, timeoutMs = 10_000): Promise<number | null> {
    if (this.stopped) return null;
    if (this.ws === null) {
      try {
        await this.open();
        this.reconnects += 1;
      } catch {
        return null;
      }
    }
    const ws = this.ws!;
    const ref = ++this.ref;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(ref);
        resolve(null);
      }, timeoutMs);
      this.waiting.set(ref, (count) => {
        clearTimeout(timer);
        resolve(count);
      });
      ws.send(JSON.stringify({ op: "presence", ref, channel }));
    });
  }

  /**
   * Asks again every `intervalMs` (one question in flight at a time) until an
   * answer satisfies `done`; `null` after `timeoutMs` or once `abort` fires
   * (the condition can no longer come true). Resolution: the interval plus
   * one round trip through the node's event loop, which is busy exactly when
   * convergence is slow.
   */
  async until(channel: string, done: (count: number) => boolean, intervalMs: number, timeoutMs: number, abort?: AbortSignal): Promise<Observation | null> {
    const deadline = nowMs() + timeoutMs;
    let polls = 0;
    while (nowMs() < deadline && !this.stopped && abort?.aborted !== true) {
      const count = await this.count(channel, Math.max(1, deadline - nowMs()));
      const at = nowMs();
      polls += 1;
      if (count !== null && done(count)) return { at, count, polls };
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    return null;
  }

  close(): void {
    this.stopped = true;
    clearInterval(this.heartbeat);
    this.ws?.terminate();
  }

  private async open(): Promise<void> {
    const ws = new WebSocket(this.url, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error("observer: no welcome"));
      }, OPEN_TIMEOUT_MS);
      ws.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      ws.once("message", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    ws.on("error", () => undefined);
    ws.on("message", (data: Buffer) => {
      const frame = parse(data);
      if (frame.ref === undefined) return;
      const resolve = this.waiting.get(frame.ref);
      this.waiting.delete(frame.ref);
      resolve?.(frame.op === "ok" && typeof frame.count === "number" ? frame.count : null);
    });
    ws.on("close", (code: number) => {
      if (this.ws === ws) this.ws = null;
      clearInterval(this.heartbeat);
      if (!this.stopped) this.closeCodes[code] = (this.closeCodes[code] ?? 0) + 1;
      for (const resolve of this.waiting.values()) resolve(null);
      this.waiting.clear();
    });
    this.ws = ws;
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send(PING), this.heartbeatMs);
  }
}

function parse(data: Buffer): { op?: string; ref?: number; count?: number } {
  try {
    return JSON.parse(data.toString("utf8")) as { op?: string; ref?: number; count?: number };
  } catch {
    return {};
  }
}
