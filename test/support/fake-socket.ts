import type { CloseCode } from "@sobranie/protocol/codes";
import type { LocalFanout, SessionSocket } from "../../src/core/ports/session-socket.js";

/** What a real transport reports when the client goes away without a close frame. */
const ABNORMAL_CLOSURE = 1006;

/**
 * A SessionSocket that records what the core sent, for core tests without a
 * server. It keeps the port's guarantees as the real sockets do
 * (test/contract/session-socket.contract.ts): once closed, by `close` or by
 * `hangUp`, every method is a no-op and the socket has left its topics.
 */
export class FakeSocket implements SessionSocket {
  readonly sent: Array<Record<string, unknown>> = [];
  readonly topics = new Set<string>();
  closedWith: { code: CloseCode; reason: string } | undefined;
  /** What `bufferedBytes` reports while open: set it to play a client that stopped reading. */
  buffered = 0;
  private closed = false;

  /** `onClosed` plays the transport's close callback: once, with the code, after the close. */
  constructor(private readonly onClosed: (code: number) => void = () => {}) {}

  send(text: string): void {
    if (!this.closed) this.sent.push(JSON.parse(text) as Record<string, unknown>);
  }

  close(code: CloseCode, reason: string): void {
    if (this.closed) return;
    this.closedWith = { code, reason };
    this.end(code);
  }

  /** The client went away. */
  hangUp(): void {
    if (!this.closed) this.end(ABNORMAL_CLOSURE);
  }

  subscribe(topic: string): void {
    if (!this.closed) this.topics.add(topic);
  }

  unsubscribe(topic: string): void {
    this.topics.delete(topic);
  }

  bufferedBytes(): number {
    return this.closed ? 0 : this.buffered;
  }

  private end(code: number): void {
    this.closed = true;
    this.topics.clear();
    this.onClosed(code);
  }
}

/** Fans out to FakeSockets by topic, as the runtime's native publish would. */
export class FakeFanout implements LocalFanout {
  readonly sockets = new Set<FakeSocket>();

  publish(topic: string, text: string): number {
    let recipients = 0;
    for (const socket of this.sockets) {
      if (!socket.topics.has(topic)) continue;
      socket.send(text);
      recipients += 1;
    }
    return recipients;
  }

  subscribers(topic: string): number {
    let count = 0;
    for (const socket of this.sockets) if (socket.topics.has(topic)) count += 1;
    return count;
  }
}
