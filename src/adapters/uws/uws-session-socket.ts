import type { UwsApp, UwsWebSocket } from "../../core/ports/uws-api.js";
import type { CloseCode } from "@sobranie/protocol/codes";
import type { LocalFanout, SessionSocket } from "../../core/ports/session-socket.js";
import type { SseTopics } from "./sse-session-socket.js";
import type { CorkedSends, HasWaitingFrames } from "./corked-sends.js";

/**
 * A topic every socket holds from open to close; no channel has this name
 * (channels are `namespace:id`) and nothing is published to it. uWS.js
 * (20.30) frees a socket's subscriber state when the socket leaves its last
 * topic, and with it the frames published to the socket in this turn and not
 * yet written, so an unsubscribe right after a publish would lose an event
 * the publish counted as handed over (Bun's server keeps them). Holding this
 * topic keeps that state until the close, which writes them before the close
 * frame (test/contract/session-socket.contract.ts).
 */
const SUBSCRIBER_ANCHOR_TOPIC = "sobranie/socket";

/**
 * The SessionSocket port over a uWS WebSocket. uWS throws on any call to a
 * closed socket, so `closed` is set in the close handler and checked first.
 * Frames wait in `sends` until the end of the turn and leave corked; a close
 * writes them first, and `bufferedBytes` counts them.
 */
export class UwsSessionSocket<UserData> implements SessionSocket, HasWaitingFrames {
  private closed = false;
  private waiting: string[] = [];
  private waitingBytes = 0;

  constructor(
    private readonly ws: UwsWebSocket<UserData>,
    private readonly sends: CorkedSends,
  ) {
    ws.subscribe(SUBSCRIBER_ANCHOR_TOPIC);
  }

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
    if (frames.length === 1) this.ws.send(frames[0]!, false, false);
    else this.ws.cork(() => {
      for (const frame of frames) this.ws.send(frame, false, false);
    });
  }

  close(code: CloseCode, reason: string): void {
    if (this.closed) return;
    this.writeWaiting();
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
    return this.closed ? 0 : this.ws.getBufferedAmount() + this.waitingBytes;
  }
}

/**
 * Native uWS topic publish for WebSockets: one call, every subscribed socket,
 * no JS loop. SSE streams (not uWS topics) get the frame from `sse`. Frames
 * sent directly and still waiting in `sends` leave first, so none is
 * overtaken by an event published after it.
 */
export class UwsFanout implements LocalFanout {
  constructor(
    private readonly app: UwsApp,
    private readonly sends: CorkedSends,
    private readonly sse?: SseTopics,
  ) {}

  publish(topic: string, text: string): number {
    const recipients = this.app.numSubscribers(topic);
    if (recipients > 0) {
      this.sends.flush();
      this.app.publish(topic, text, false, false);
    }
    return recipients + (this.sse?.publish(topic, text) ?? 0);
  }

  subscribers(topic: string): number {
    return this.app.numSubscribers(topic) + (this.sse?.subscribers(topic) ?? 0);
  }
}
