import WebSocket from "ws";

export type Frame = { op: string; ref?: number; [key: string]: unknown };

export interface Closed {
  code: number;
  reason: string;
}

/**
 * A protocol-v1 test client on `ws`. Keeps every frame it received; `next`
 * waits for the first unread frame matching a predicate (no sleeps).
 */
export class TestClient {
  readonly frames: Frame[] = [];
  readonly closed: Promise<Closed>;
  private readonly waiters = new Set<() => void>();
  private nextRef = 1;
  private consumed = new Set<Frame>();

  private constructor(readonly socket: WebSocket) {
    socket.on("message", (data, isBinary) => {
      if (isBinary) return;
      this.frames.push(JSON.parse(data.toString()) as Frame);
      for (const wake of this.waiters) wake();
    });
    this.closed = new Promise((resolve) => {
      socket.on("close", (code, reason) => {
        resolve({ code, reason: reason.toString() });
        for (const wake of this.waiters) wake();
      });
    });
  }

  /** Connects and waits for `welcome`. Rejects with the HTTP status on a refused upgrade. */
  static async connect(url: string, options: { token?: string; headers?: Record<string, string>; localAddress?: string } = {}): Promise<TestClient> {
    const target = options.token === undefined ? url : `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(options.token)}`;
    const socket = new WebSocket(target, { headers: options.headers, localAddress: options.localAddress, maxPayload: 4 * 1024 * 1024 });
    const client = new TestClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("unexpected-response", (_request, response) => {
        let body = "";
        response.on("data", (chunk: Buffer) => (body += chunk.toString()));
        response.on("end", () => reject(new UpgradeRefused(response.statusCode ?? 0, body)));
      });
      socket.once("error", reject);
    });
    await client.next((frame) => frame.op === "welcome");
    return client;
  }

  /** Sends a frame with a fresh `ref` and waits for the reply that echoes it. */
  async request(frame: Record<string, unknown>, timeoutMs = 5_000): Promise<Frame> {
    const ref = this.nextRef++;
    this.send({ ...frame, ref });
    return this.next((reply) => reply.ref === ref, timeoutMs);
  }

  send(frame: Record<string, unknown>): void {
    this.socket.send(JSON.stringify(frame));
  }

  sendRaw(data: string | Buffer): void {
    this.socket.send(data);
  }

  /** The first frame not yet returned by `next` that matches. */
  next(predicate: (frame: Frame) => boolean, timeoutMs = 5_000): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.frames.find((frame) => !this.consumed.has(frame) && predicate(frame));
        if (found) {
          this.consumed.add(found);
          done();
          resolve(found);
          return true;
        }
        if (this.socket.readyState === WebSocket.CLOSED) {
          done();
          reject(new Error(`socket closed while waiting; last frames: ${brief(this.frames.slice(-5))}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching frame within ${timeoutMs} ms; last frames: ${brief(this.frames.slice(-5))}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(wake);
      };
      const wake = () => void check();
      if (!check()) this.waiters.add(wake);
    });
  }

  /** Every event frame received so far for `channel`. */
  events(channel: string): Frame[] {
    return this.frames.filter((frame) => frame.op === "event" && frame.channel === channel);
  }

  close(): void {
    this.socket.close();
  }
}

export class UpgradeRefused extends Error {
  override readonly name = "UpgradeRefused";
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`upgrade refused with HTTP ${status}: ${body}`);
  }
}

/** Frames for an error message, each cut to 300 characters (events can be 60 KB). */
function brief(frames: readonly Frame[]): string {
  return frames.map((frame) => JSON.stringify(frame).slice(0, 300)).join(", ");
}
