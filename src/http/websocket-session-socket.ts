import type { EdgeServer, EdgeWebSocket } from "../core/ports/edge.js";
import type { CloseCode } from "@sobranie/protocol/codes";
import type { LocalFanout, SessionSocket } from "../core/ports/session-socket.js";
import type { SseTopics } from "./sse-session-socket.js";
import type { CorkedSends, HasWaitingFrames } from "./corked-sends.js";

/**
 * The SessionSocket port over an edge WebSocket, whose calls are no-ops once
 * it closed. `closed` (set by `close` and by the route's close handler,
 * `markClosed`) keeps frames from waiting for a closed socket.
 * Frames wait in `sends` until the end of the turn and leave corked; a close
 * writes them first, and `bufferedBytes` counts them.
 */
export class WebSocketSessionSocket<Data> implements SessionSocket, HasWaitingFrames {
  private closed = false;
  private waiting: string[] = [];
  private waitingBytes = 0;

  constructor(
    private readonly ws: EdgeWebSocket<Data>,
    private readonly sends: CorkedSends,
  ) {}

  markClosed(): void {
    this.closed = true;
    this.waiting = [];
    this.waitingBytes = 0;
  }

  send(text: string): void {
    if (this.closed) return;
    this.waiting.push(text);
    this.waitingBytes += text.length;
    if (this.waiting.length === 1) this.sends.add(this);
  }

  writeWaiting(): void {
    const frames = this.waiting;
    this.waiting = [];
    this.waitingBytes = 0;
    if (this.closed || frames.length === 0) return;
    if (frames.length === 1) this.ws.send(frames[0]!);
    else this.ws.cork(() => {
      for (const frame of frames) this.ws.send(frame);
    });
  }

  close(code: CloseCode, reason: string): void {
    if (this.closed) return;
    this.writeWaiting();
    this.closed = true;
    this.ws.close(code, reason);
  }

  // After a close these are the edge socket's no-ops, and nothing is waiting.
  subscribe(topic: string): void {
    this.ws.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    this.ws.unsubscribe(topic);
  }

  bufferedBytes(): number {
    return this.ws.bufferedBytes() + this.waitingBytes;
  }
}

/**
 * The runtime's native topic publish for WebSockets: one call, every
 * subscribed socket, no JS loop. SSE streams (not native topics) get the frame from `sse`. Frames
 * sent directly and still waiting in `sends` leave first, so none is
 * overtaken by an event published after it.
 */
export class EdgeFanout implements LocalFanout {
  constructor(
    private readonly server: EdgeServer,
    private readonly sends: CorkedSends,
    private readonly sse?: SseTopics,
  ) {}

  publish(topic: string, text: string): number {
    const recipients = this.server.subscribers(topic);
    if (recipients > 0) {
      this.sends.flush();
      this.server.publish(topic, text);
    }
    return recipients + (this.sse?.publish(topic, text) ?? 0);
  }

  subscribers(topic: string): number {
    return this.server.subscribers(topic) + (this.sse?.subscribers(topic) ?? 0);
  }
}
