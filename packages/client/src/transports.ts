import { ClientCloseCode, CloseCode } from "@sobranie/protocol/codes";
import type { ClientRequest, ServerFrame, TransportKind } from "./types.js";

/** A server frame as received; the SSE-only `close` message says why a stream ended. */
export type IncomingFrame = ServerFrame | { op: "close"; code: number; reason: string };

export interface TransportHandlers {
  /** A frame; on SSE, `eventId` is the stream's `id:` so far (its Last-Event-ID). */
  frame(frame: IncomingFrame, eventId: string | undefined): void;
  /** Exactly once. `code` is a `CloseCode` or a `ClientCloseCode` (@sobranie/protocol/codes); HTTP refusals of SSE are mapped (401 → 4001, 429 → 4029, 5xx → 1012, other 4xx → 4400). */
  closed(code: number, reason: string): void;
}

export interface Transport {
  readonly kind: TransportKind;
  /** False when this transport cannot send frames (SSE). */
  send(frame: ClientRequest): boolean;
  close(): void;
}

/** Structural WebSocket: the browser's, React Native's, or `ws` in tests. */
export interface WebSocketLike {
  readonly readyState: number;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketFactory = new (url: string) => WebSocketLike;

/** Structural fetch with a streaming body (browsers; not every React Native runtime). */
export type FetchLike = (
  url: string,
  init: { headers: Record<string, string>; signal?: unknown; method?: string; body?: string },
) => Promise<{
  ok: boolean;
  status: number;
  body: { getReader(): { read(): Promise<{ done: boolean; value?: Uint8Array }>; cancel(): Promise<void> } } | null;
  text(): Promise<string>;
}>;

const WS_OPEN = 1;

export function openWebSocket(factory: WebSocketFactory, url: string, handlers: TransportHandlers): Transport {
  const socket = new factory(url);
  let done = false;
  const finish = (code: number, reason: string): void => {
    if (done) return;
    done = true;
    handlers.closed(code, reason);
  };
  socket.onmessage = (event) => {
    if (typeof event.data !== "string") return;
    let frame: IncomingFrame;
    try {
      frame = JSON.parse(event.data) as IncomingFrame;
    } catch {
      return;
    }
    if (!done) handlers.frame(frame, undefined);
  };
  socket.onclose = (event) => finish(event.code, event.reason);
  socket.onerror = () => {};
  return {
    kind: "websocket",
    send(frame) {
      if (done || socket.readyState !== WS_OPEN) return false;
      socket.send(JSON.stringify(frame));
      return true;
    },
    close() {
      socket.close(CloseCode.Normal, "client closed");
      finish(CloseCode.Normal, "client closed");
    },
  };
}

/**
 * SSE over fetch with a streaming body: unlike EventSource it can send the
 * token as a header, set Last-Event-ID itself, and read every event name.
 */
export function openSse(fetcher: FetchLike, url: string, token: string, lastEventId: string | undefined, handlers: TransportHandlers): Transport {
  const Controller = (globalThis as { AbortController?: new () => { signal: unknown; abort(): void } }).AbortController;
  const abort = Controller ? new Controller() : undefined;
  let done = false;
  const finish = (code: number, reason: string): void => {
    if (done) return;
    done = true;
    abort?.abort();
    handlers.closed(code, reason);
  };
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: "text/event-stream" };
  if (lastEventId !== undefined) headers["last-event-id"] = lastEventId;
  void (async () => {
    try {
      const response = await fetcher(url, { headers, signal: abort?.signal });
      if (!response.ok) {
        const text = await response.text().catch(() => "");
        return finish(httpCloseCode(response.status), `HTTP ${response.status} ${text.slice(0, 200)}`);
      }
      if (!response.body) return finish(ClientCloseCode.Refused, "this runtime's fetch cannot stream a response body");
      const reader = response.body.getReader();
      const parser = new SseParser(lastEventId, (frame, id) => {
        if (done) return;
        if (frame.op === "close") return finish(frame.code, frame.reason);
        handlers.frame(frame, id);
      });
      for (;;) {
        const { done: ended, value } = await reader.read();
        if (done) return void reader.cancel().catch(() => {});
        if (ended) return finish(ClientCloseCode.Abnormal, "stream ended");
        if (value) parser.push(value);
      }
    } catch (error) {
      finish(ClientCloseCode.Abnormal, error instanceof Error ? error.message : "stream failed");
    }
  })();
  return {
    kind: "sse",
    send: () => false,
    close: () => finish(CloseCode.Normal, "client closed"),
  };
}

function httpCloseCode(status: number): number {
  if (status === 401) return CloseCode.TokenExpired;
  if (status === 429) return CloseCode.RateLimitAbused;
  if (status >= 500) return CloseCode.ServiceRestart;
  return ClientCloseCode.Refused;
}

/** The text/event-stream format, incrementally: fields `event`, `data`, `id`; comments ignored. */
export class SseParser {
  private pending = "";
  /** The last chunk ended in CR: an LF starting the next one is that CR's CRLF, not another line. */
  private afterCr = false;
  private data: string[] = [];
  private decoder = new Utf8Stream();

  constructor(
    private lastEventId: string | undefined,
    private readonly onMessage: (frame: IncomingFrame, lastEventId: string | undefined) => void,
  ) {}

  push(bytes: Uint8Array): void {
    this.pending += this.decoder.decode(bytes);
    if (this.afterCr && this.pending !== "") {
      if (this.pending.startsWith("\n")) this.pending = this.pending.slice(1);
      this.afterCr = false;
    }
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.pending);
      if (!match) return;
      // A CR ends its line at once (waiting for a possible LF would hold a CR-terminated message back until more bytes came).
      this.afterCr = match[0] === "\r" && match.index === this.pending.length - 1;
      const line = this.pending.slice(0, match.index);
      this.pending = this.pending.slice(match.index + match[0].length);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\0")) this.lastEventId = value;
  }

  private dispatch(): void {
    if (this.data.length === 0) return;
    const text = this.data.join("\n");
    this.data = [];
    let frame: IncomingFrame;
    try {
      frame = JSON.parse(text) as IncomingFrame;
    } catch {
      return;
    }
    this.onMessage(frame, this.lastEventId);
  }
}

/** Streaming UTF-8 decoding (a character may be split across chunks), without TextDecoder. */
class Utf8Stream {
  private carry: number[] = [];

  decode(bytes: Uint8Array): string {
    const all = this.carry.length > 0 ? [...this.carry, ...bytes] : Array.from(bytes);
    let end = all.length;
    // Hold back an incomplete trailing sequence.
    for (let back = 1; back <= Math.min(3, all.length); back++) {
      const byte = all[all.length - back]!;
      if ((byte & 0xc0) === 0x80) continue;
      const need = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
      if (need > back) end = all.length - back;
      break;
    }
    this.carry = all.slice(end);
    const complete = all.slice(0, end);
    if (!complete.every((byte) => byte < 0x80)) {
      return decodeURIComponent(complete.map((byte) => `%${byte.toString(16).padStart(2, "0")}`).join(""));
    }
    let text = "";
    for (let start = 0; start < end; start += 4096) text += String.fromCharCode(...complete.slice(start, start + 4096));
    return text;
  }
}
