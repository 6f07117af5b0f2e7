import type { ResponseStream } from "../core/ports/edge.js";
import { SSE_KEEPALIVE, SseMessage, sseCloseMessage } from "@sobranie/protocol/sse";
import type { CloseCode } from "@sobranie/protocol/codes";
import type { SessionSocket } from "../core/ports/session-socket.js";

/**
 * SSE streams by topic. Native topics exist for WebSockets only, so the
 * LocalFanout hands each event to this registry as well: the frame is
 * encoded to SSE once per event, then written to each stream of the topic.
 */
export class SseTopics {
  private readonly topics = new Map<string, Set<SseSessionSocket>>();

  add(topic: string, socket: SseSessionSocket): void {
    let sockets = this.topics.get(topic);
    if (!sockets) this.topics.set(topic, (sockets = new Set()));
    sockets.add(socket);
  }

  remove(topic: string, socket: SseSessionSocket): void {
    const sockets = this.topics.get(topic);
    if (!sockets?.delete(socket)) return;
    if (sockets.size === 0) this.topics.delete(topic);
  }

  subscribers(topic: string): number {
    return this.topics.get(topic)?.size ?? 0;
  }

  /** Returns how many SSE streams the frame was written to. */
  publish(topic: string, frameText: string): number {
    const sockets = this.topics.get(topic);
    if (!sockets || sockets.size === 0) return 0;
    const message = new SseMessage(frameText);
    for (const socket of sockets) socket.deliver(message);
    return sockets.size;
  }
}

export interface SseSessionSocketDeps {
  readonly stream: ResponseStream;
  readonly topics: SseTopics;
  /** Refs of the subscribe requests the stream makes for its `channels`; `id:` lines start once all are answered. */
  readonly pendingRefs: readonly number[];
  /** Called once, when the stream ended (by the server with `code`, or by the client). */
  readonly onClosed: (code: number) => void;
}

/**
 * The SessionSocket port over a streaming HTTP response.
 *
 * `id:` lines: a client's `Last-Event-ID` becomes `since` for every durable
 * channel of its next stream, so an id must never run ahead of an event the
 * stream has not sent yet. While the stream's subscriptions are still being
 * made (recoveries in flight, each sending older history), events go without
 * `id:`; a stream cut then reconnects from the previous id, and the client
 * drops the repeats by event id.
 *
 * Backpressure: a runtime exposes no buffered amount for HTTP responses.
 * `write` returns false while bytes are held back, so the bytes
 * written since the last write that found the buffer empty bound what is
 * buffered; the gateway's inspection closes the stream over SEND_BUFFER_BYTES.
 */
export class SseSessionSocket implements SessionSocket {
  private closed = false;
  private backlogBytes = 0;
  private readonly pendingRefs: Set<number>;
  private readonly joined = new Set<string>();
  private readonly stream: ResponseStream;
  private readonly topics: SseTopics;
  private readonly onClosed: (code: number) => void;

  constructor(deps: SseSessionSocketDeps) {
    this.stream = deps.stream;
    this.topics = deps.topics;
    this.onClosed = deps.onClosed;
    this.pendingRefs = new Set(deps.pendingRefs);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  send(text: string): void {
    if (!this.closed) this.deliver(new SseMessage(text));
  }

  /** One encoded frame, shared by every stream of a topic. */
  deliver(message: SseMessage): void {
    if (this.closed) return;
    this.write(message.text(this.pendingRefs.size === 0));
    if ((message.op === "ok" || message.op === "error") && message.ref !== undefined) this.pendingRefs.delete(message.ref);
  }

  /** The 15-second comment; false once the stream is gone. */
  keepAlive(): boolean {
    if (this.closed) return false;
    this.write(SSE_KEEPALIVE);
    return true;
  }

  close(code: CloseCode, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.leaveAll();
    // The close message is queued behind whatever is buffered, like a WebSocket close frame.
    this.stream.cork(() => {
      this.stream.write(sseCloseMessage(code, reason));
      this.stream.end();
    });
    this.onClosed(code);
  }

  /** The client went away: the stream is not written again. */
  aborted(code: number): void {
    if (this.closed) return;
    this.closed = true;
    this.leaveAll();
    this.onClosed(code);
  }

  subscribe(topic: string): void {
    if (this.closed) return;
    this.joined.add(topic);
    this.topics.add(topic, this);
  }

  unsubscribe(topic: string): void {
    this.joined.delete(topic);
    this.topics.remove(topic, this);
  }

  bufferedBytes(): number {
    if (this.closed) return 0;
    // Over a limit on the estimate alone, the client may have caught up since the
    // last write: a keep-alive comment finds out (a write that finds the buffer empty).
    if (this.backlogBytes > 0) this.keepAlive();
    return this.backlogBytes;
  }

  private write(chunk: string): void {
    const accepted = this.stream.write(chunk);
    this.backlogBytes = accepted ? 0 : this.backlogBytes + Buffer.byteLength(chunk);
  }

  private leaveAll(): void {
    for (const topic of this.joined) this.topics.remove(topic, this);
    this.joined.clear();
  }
}
