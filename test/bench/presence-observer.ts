import { SignJWT } from "jose";
import WebSocket from "ws";
import { nowMs } from "./payload.js";

/** When a poll first met its condition: the time its answer arrived (`nowMs()`), and what it said. */
export interface Observation {
  at: number;
  count: number;
  polls: number;
}

/**
 * A runner-side connection to one gateway node that asks the `presence` op
 * for a channel's member count. It subscribes to nothing, so it is no member
 * and receives no join/leave frames: its answers are the node's own view of
 * the cluster. Above PRESENCE_MAX_LISTED the answer has `count` only
 * (`truncated: true`), which is all that is read here.
 */
export class PresenceObserver {
  private ref = 0;
  private readonly waiting = new Map<number, (count: number | null) => void>();
  private closed = false;
  private readonly heartbeat: NodeJS.Timeout;

  private constructor(
    private readonly ws: WebSocket,
    heartbeatMs: number,
  ) {
    // Like any client: silent for PRESENCE_TTL_MS, it would be closed with 4008 during the idle window.
    this.heartbeat = setInterval(() => this.closed || ws.send(PING), heartbeatMs);
    ws.on("message", (data: Buffer) => {
      const frame = parse(data);
      if (frame.ref === undefined) return;
      const resolve = this.waiting.get(frame.ref);
      this.waiting.delete(frame.ref);
      resolve?.(frame.op === "ok" && typeof frame.count === "number" ? frame.count : null);
    });
    ws.on("close", () => {
      this.closed = true;
      clearInterval(this.heartbeat);
      for (const resolve of this.waiting.values()) resolve(null);
      this.waiting.clear();
    });
    ws.on("error", () => undefined);
  }

  /** Connects as `user` (claim `room:*`, so `presence` is allowed), waits for `welcome`, then pings every `heartbeatMs`. */
  static async connect(wsUrl: string, jwtSecret: string, user: string, heartbeatMs: number): Promise<PresenceObserver> {
    const token = await new SignJWT({ channels: ["room:*"] }).setProtectedHeader({ alg: "HS256" }).setSubject(user).setExpirationTime("2h").sign(new TextEncoder().encode(jwtSecret));
    const ws = new WebSocket(`${wsUrl}?token=${token}`, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`observer ${user}: no welcome within 10 s`)), 10_000);
      ws.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      ws.once("message", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    return new PresenceObserver(ws, heartbeatMs);
  }

  /** The node's member count of `channel`; `null` on an error answer, a closed socket or no answer within `timeoutMs`. */
  count(channel: string, timeoutMs = 10_000): Promise<number | null> {
    if (this.closed) return Promise.resolve(null);
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
      this.ws.send(JSON.stringify({ op: "presence", ref, channel }));
    });
  }

  /**
   * Asks again every `intervalMs` (one question in flight at a time) until an
   * answer satisfies `done`; `null` after `timeoutMs`, once the socket is
   * closed, or once `abort` fires (the condition can no longer come true). Resolution: the interval plus one round trip through the node's
   * event loop, which is busy exactly when convergence is slow.
   */
  async until(channel: string, done: (count: number) => boolean, intervalMs: number, timeoutMs: number, abort?: AbortSignal): Promise<Observation | null> {
    const deadline = nowMs() + timeoutMs;
    let polls = 0;
    while (nowMs() < deadline && !this.closed && abort?.aborted !== true) {
      const count = await this.count(channel, Math.max(1, deadline - nowMs()));
      const at = nowMs();
      polls += 1;
      if (count !== null && done(count)) return { at, count, polls };
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    return null;
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.ws.terminate();
  }
}

const PING = JSON.stringify({ op: "ping" });

function parse(data: Buffer): { op?: string; ref?: number; count?: number } {
  try {
    return JSON.parse(data.toString("utf8")) as { op?: string; ref?: number; count?: number };
  } catch {
    return {};
  }
}
