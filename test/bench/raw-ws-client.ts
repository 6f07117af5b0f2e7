import { connect, type Socket } from "node:net";

/**
 * The connect storm's client: a WebSocket over a bare TCP socket, the least
 * a client can do. A pre-built upgrade request (no `http` module, no key
 * generation, the `Sec-WebSocket-Accept` answer not checked), a frame parser
 * for the server's small unmasked text frames, and client frames masked with
 * a zero key (valid framing; the payload goes out unchanged, so no XOR pass).
 * Measured against the `ws` client it doubles what two generator processes
 * can open per second (test/bench/README.md), so the generator is no longer
 * the ceiling of the storm.
 *
 * Not a general client: no fragmentation, no pings answered, nothing above
 * 64 KiB sent; close and ping frames from the server end or are ignored.
 */

const CRLFCRLF = Buffer.from("\r\n\r\n");
const OPCODE_TEXT = 0x1;
const OPCODE_CLOSE = 0x8;

export interface RawTarget {
  host: string;
  port: number;
  /** Path and query, e.g. `/realtime/ws?token=…`. */
  path: string;
}

export class RawWs {
  private buffer: Buffer = Buffer.alloc(0);
  private upgraded = false;
  private onText: ((text: string) => void) | undefined;
  private onEnd: ((reason: string) => void) | undefined;
  private onUpgrade: () => void = () => undefined;
  private onRefused: (status: string) => void = () => undefined;

  private constructor(private readonly socket: Socket) {}

  /** Resolves once the server answered 101; rejects with a short reason (`http_401`, `ECONNRESET`, `timeout`). */
  static open(target: RawTarget, localAddress: string, timeoutMs: number): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: target.host, port: target.port, localAddress, noDelay: true });
      const ws = new RawWs(socket);
      const timer = setTimeout(() => fail("timeout"), timeoutMs);
      const fail = (reason: string): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(new Error(reason));
      };
      ws.onEnd = fail;
      socket.on("error", (error: NodeJS.ErrnoException) => ws.end(error.code ?? error.message));
      socket.on("close", () => ws.end("closed"));
      socket.on("data", (chunk: Buffer) => ws.receive(chunk));
      ws.onUpgrade = () => {
        clearTimeout(timer);
        ws.onEnd = undefined;
        resolve(ws);
      };
      ws.onRefused = (status) => fail(`http_${status}`);
      socket.write(
        `GET ${target.path} HTTP/1.1\r\nHost: ${target.host}:${target.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      );
    });
  }

  /** The next text frame, or a rejection when the connection ends or `timeoutMs` passes first. */
  nextText(timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(() => reject(new Error("timeout"))), timeoutMs);
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        this.onText = undefined;
        this.onEnd = undefined;
        settle();
      };
      this.onText = (text) => finish(() => resolve(text));
      this.onEnd = (reason) => finish(() => reject(new Error(reason)));
      this.parseFrames();
    });
  }

  send(text: string): void {
    const payload = Buffer.from(text, "utf8");
    const length = payload.length;
    const header = length < 126 ? Buffer.alloc(6) : Buffer.alloc(8);
    header[0] = 0x80 | OPCODE_TEXT;
    if (length < 126) header[1] = 0x80 | length;
    else {
      header[1] = 0x80 | 126;
      header.writeUInt16BE(length, 2);
    }
    // The mask key is the header's last four bytes, left zero.
    this.socket.write(Buffer.concat([header, payload]));
  }

  destroy(): void {
    this.socket.destroy();
  }

  private end(reason: string): void {
    const onEnd = this.onEnd;
    this.onEnd = undefined;
    onEnd?.(reason);
  }

  private receive(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    if (!this.upgraded) {
      const end = this.buffer.indexOf(CRLFCRLF);
      if (end < 0) return;
      // "HTTP/1.1 101 Switching Protocols": the status is bytes 9–11.
      const status = this.buffer.toString("latin1", 9, 12);
      if (status !== "101") return this.onRefused(status);
      this.upgraded = true;
      this.buffer = this.buffer.subarray(end + CRLFCRLF.length);
      this.onUpgrade();
    }
    this.parseFrames();
  }

  /** Hands complete text frames to the waiting reader, one per `nextText`; the rest stays buffered. */
  private parseFrames(): void {
    while (this.onText !== undefined && this.buffer.length >= 2) {
      const opcode = this.buffer[0]! & 0x0f;
      let length = this.buffer[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.buffer.length < 4) return;
        length = this.buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.buffer.length < 10) return;
        length = Number(this.buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.buffer.length < offset + length) return;
      const payload = this.buffer.subarray(offset, offset + length);
      this.buffer = this.buffer.subarray(offset + length);
      if (opcode === OPCODE_CLOSE) return this.end(`close_${payload.length >= 2 ? payload.readUInt16BE(0) : "none"}`);
      if (opcode === OPCODE_TEXT) this.onText(payload.toString("utf8"));
    }
  }
}
