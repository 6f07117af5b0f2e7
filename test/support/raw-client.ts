import net from "node:net";

const KEPT_BYTES = 65_536;

/**
 * An HTTP client on a bare TCP socket, for what the runtime's own WebSocket
 * and fetch hide: the status of a refused upgrade, a WebSocket close frame as
 * sent, and a reader that stops reading (`pause()` stops taking bytes from the
 * kernel, so the server's buffer grows). Megabytes may arrive, so only the
 * first and the last 64 KiB are kept.
 */
export class RawHttpClient {
  ended = false;
  /** Every byte received. */
  bytes = 0;
  private head = Buffer.alloc(0);
  private tail = Buffer.alloc(0);

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.bytes += chunk.length;
      if (this.head.length < KEPT_BYTES) this.head = Buffer.concat([this.head, chunk]).subarray(0, KEPT_BYTES);
      const tail = Buffer.concat([this.tail, chunk]);
      this.tail = tail.subarray(Math.max(0, tail.length - KEPT_BYTES));
    });
    socket.on("close", () => (this.ended = true));
  }

  /** Sends a GET with `headers`; resolves once sent. */
  static async get(port: number, path: string, headers: Record<string, string>): Promise<RawHttpClient> {
    const socket = net.connect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const lines = [`GET ${path} HTTP/1.1`, "Host: 127.0.0.1", ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)];
    socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    return new RawHttpClient(socket);
  }

  /** A WebSocket handshake (no subprotocol, no extension). */
  static websocket(port: number, path: string): Promise<RawHttpClient> {
    return RawHttpClient.get(port, path, {
      Upgrade: "websocket",
      Connection: "Upgrade",
      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version": "13",
    });
  }

  /** The first 64 KiB received. */
  get start(): string {
    return this.head.toString("latin1");
  }

  /** The last 64 KiB received. */
  get end(): string {
    return this.tail.toString("latin1");
  }

  /** The status code of the response head, once it arrived. */
  get status(): number | undefined {
    const match = /^HTTP\/1\.1 (\d{3})/.exec(this.start);
    return match ? Number(match[1]) : undefined;
  }

  /**
   * The code of the WebSocket close frame that ends what was received, if it
   * does (a short unmasked frame: 0x88, length, code, reason). The frames
   * before it here are JSON text, whose bytes never read as 0x88.
   */
  closeCode(): number | undefined {
    for (let index = Math.max(0, this.tail.length - 127); index + 4 <= this.tail.length; index += 1) {
      if (this.tail[index] === 0x88 && this.tail[index + 1] === this.tail.length - index - 2) return this.tail.readUInt16BE(index + 2);
    }
    return undefined;
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  close(): void {
    this.socket.destroy();
  }
}
