import net from "node:net";
import { waitFor } from "./wait-for.js";

export interface RawResponse {
  readonly status: number;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/**
 * One HTTP/1.1 connection on a bare TCP socket, for what fetch hides or
 * refuses to send: repeated or malformed headers, several requests in one
 * write (pipelining). Responses are parsed as they arrive (each must carry
 * Content-Length, as uWS's do).
 */
export class RawHttpConnection {
  readonly responses: RawResponse[] = [];
  closed = false;
  private pending = Buffer.alloc(0);

  private constructor(private readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      this.parse();
    });
    socket.on("error", () => {});
    socket.on("close", () => (this.closed = true));
  }

  static async open(port: number): Promise<RawHttpConnection> {
    const socket = net.connect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return new RawHttpConnection(socket);
  }

  /** Writes `text` (lines end in \r\n as given) in one write. */
  send(text: string): void {
    this.socket.write(Buffer.from(text, "latin1"));
  }

  waitForClose(timeoutMs = 5_000): Promise<void> {
    return waitFor(() => this.closed, timeoutMs, "the server closing the connection");
  }

  waitForResponses(count: number, timeoutMs = 5_000): Promise<void> {
    return waitFor(() => this.responses.length >= count, timeoutMs, `${count} responses`);
  }

  close(): void {
    this.socket.destroy();
  }

  private parse(): void {
    for (;;) {
      const headEnd = this.pending.indexOf("\r\n\r\n");
      if (headEnd < 0) return;
      const [statusLine = "", ...lines] = this.pending.subarray(0, headEnd).toString("latin1").split("\r\n");
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(":");
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const length = Number(headers["content-length"] ?? 0);
      if (this.pending.length < headEnd + 4 + length) return;
      const body = this.pending.subarray(headEnd + 4, headEnd + 4 + length).toString("utf8");
      this.pending = this.pending.subarray(headEnd + 4 + length);
      this.responses.push({ status: Number(statusLine.split(" ")[1]), headers, body });
    }
  }
}

/** A request's bytes: `headers` as given (repeats allowed), then `body`. */
export function rawRequest(method: string, path: string, headers: ReadonlyArray<readonly [string, string]>, body = ""): string {
  const lines = [`${method} ${path} HTTP/1.1`, "Host: 127.0.0.1", ...headers.map(([name, value]) => `${name}: ${value}`)];
  return `${lines.join("\r\n")}\r\n\r\n${body}`;
}
