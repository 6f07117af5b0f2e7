import type { UwsApp, UwsWebSocket } from "./uws-api.js";
import type { CloseCode } from "../../protocol/codes.js";
import type { LocalFanout, SessionSocket } from "../../core/ports/session-socket.js";
import type { SseTopics } from "./sse-session-socket.js";

/**
 * The SessionSocket port over a uWS WebSocket. uWS throws on any call to a
 * closed socket, so `closed` is set in the close handler and checked first.
 */
export class UwsSessionSocket<UserData> implements SessionSocket {
  private closed = false;

  constructor(private readonly ws: UwsWebSocket<UserData>) {}

  markClosed(): void {
    this.closed = true;
  }

  send(text: string): void {
    if (!this.closed) this.ws.send(text, false, false);
  }

  close(code: CloseCode, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.end(code, reason);
  }

  subscribe(topic: string): void {
    if (!this.closed) this.ws.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    if (!this.closed) this.ws.unsubscribe(topic);
  }

  bufferedBytes(): number {
    return this.closed ? 0 : this.ws.getBufferedAmount();
  }
}

/**
 * Native uWS topic publish for WebSockets: one call, every subscribed socket,
 * no JS loop. SSE streams (not uWS topics) get the frame from `sse`.
 */
export class UwsFanout implements LocalFanout {
  constructor(
    private readonly app: UwsApp,
    private readonly sse?: SseTopics,
  ) {}

  publish(topic: string, text: string): number {
    const recipients = this.app.numSubscribers(topic);
    if (recipients > 0) this.app.publish(topic, text, false, false);
    return recipients + (this.sse?.publish(topic, text) ?? 0);
  }
}
