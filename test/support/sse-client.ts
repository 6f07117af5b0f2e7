import http from "node:http";

export interface SseMessageRecord {
  event: string | undefined;
  id: string | undefined;
  /** The `data:` lines joined, parsed as JSON. */
  data: { op: string; [key: string]: unknown };
  /** The message exactly as it came over the wire (fields and all). */
  raw: string;
}

/**
 * A test SSE client on node:http: records each message with its raw text and
 * the comment lines; `pause()` stops reading the socket (a slow client).
 */
export class SseTestClient {
  readonly messages: SseMessageRecord[] = [];
  comments = 0;
  ended = false;
  private buffer = "";
  private readonly waiters = new Set<() => void>();

  private constructor(
    readonly request: http.ClientRequest,
    readonly response: http.IncomingMessage,
  ) {
    response.setEncoding("utf8");
    response.on("data", (chunk: string) => this.push(chunk));
    const end = () => {
      this.ended = true;
      this.wake();
    };
    response.on("end", end);
    response.on("close", end);
  }

  /** Opens `url`; resolves once the response head arrived. A non-200 answer rejects with its status and body. */
  static open(url: string, headers: Record<string, string> = {}): Promise<SseTestClient> {
    return new Promise((resolve, reject) => {
      const request = http.get(url, { headers: { accept: "text/event-stream", ...headers } }, (response) => {
        if (response.statusCode !== 200) {
          let body = "";
          response.on("data", (chunk: Buffer) => (body += chunk.toString()));
          response.on("end", () => reject(new SseRefused(response.statusCode ?? 0, body, String(response.headers["content-type"]))));
          return;
        }
        resolve(new SseTestClient(request, response));
      });
      request.on("error", reject);
    });
  }

  events(channel?: string): SseMessageRecord[] {
    return this.messages.filter((message) => message.data.op === "event" && (channel === undefined || message.data.channel === channel));
  }

  /** The first message matching `predicate` (received before or after the call). */
  async next(predicate: (message: SseMessageRecord) => boolean, timeoutMs = 10_000): Promise<SseMessageRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(predicate);
      if (found) return found;
      if (this.ended) throw new Error(`stream ended before the expected message; got ${this.messages.map((m) => m.raw).join("|")}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`no matching SSE message within ${timeoutMs} ms; got ${this.messages.length}`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, remaining);
        this.waiters.add(wake);
      });
    }
  }

  pause(): void {
    this.response.pause();
  }

  resume(): void {
    this.response.resume();
  }

  close(): void {
    this.request.destroy();
  }

  private push(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const end = this.buffer.indexOf("\n\n");
      if (end < 0) break;
      const raw = this.buffer.slice(0, end + 2);
      this.buffer = this.buffer.slice(end + 2);
      this.parse(raw);
    }
    this.wake();
  }

  private parse(raw: string): void {
    const lines = raw.split("\n").filter((line) => line !== "");
    if (lines.every((line) => line.startsWith(":"))) {
      this.comments += 1;
      return;
    }
    let event: string | undefined;
    let id: string | undefined;
    const data: string[] = [];
    for (const line of lines) {
      const colon = line.indexOf(":");
      const field = line.slice(0, colon);
      const value = line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "id") id = value;
      else if (field === "data") data.push(value);
    }
    this.messages.push({ event, id, data: JSON.parse(data.join("\n")) as SseMessageRecord["data"], raw });
  }

  private wake(): void {
    for (const wake of [...this.waiters]) wake();
  }
}

export class SseRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly contentType: string,
  ) {
    super(`SSE refused with HTTP ${status}: ${body}`);
  }
}
