import type { CloseCode } from "@sobranie/protocol/codes";
import type { LocalFanout, SessionSocket } from "../../src/core/ports/session-socket.js";

/** A SessionSocket that records what the core sent, for core tests without a server. */
export class FakeSocket implements SessionSocket {
  readonly sent: Array<Record<string, unknown>> = [];
  readonly topics = new Set<string>();
  closedWith: { code: CloseCode; reason: string } | undefined;
  /** What `bufferedBytes` reports: set it to play a client that stopped reading. */
  buffered = 0;

  send(text: string): void {
    this.sent.push(JSON.parse(text) as Record<string, unknown>);
  }

  close(code: CloseCode, reason: string): void {
    this.closedWith = { code, reason };
  }

  subscribe(topic: string): void {
    this.topics.add(topic);
  }

  unsubscribe(topic: string): void {
    this.topics.delete(topic);
  }

  bufferedBytes(): number {
    return this.buffered;
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
