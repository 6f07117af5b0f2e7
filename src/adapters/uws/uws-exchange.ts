import type { BodyRead, EdgeRequest, HttpExchange, ResponseStream } from "../../core/ports/edge.js";
import type { UwsRequest, UwsResponse } from "./uws-api.js";

/** uWS writes the status line as given. */
const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  202: "Accepted",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Payload Too Large",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** The request view over uWS's HttpRequest: read lazily, so only in the handler's own turn (uWS reuses it after). */
export class UwsEdgeRequest implements EdgeRequest {
  private rawQuery: string | undefined;
  constructor(
    private readonly res: UwsResponse,
    private readonly req: UwsRequest,
  ) {}

  get method(): string {
    return this.req.getMethod();
  }

  get path(): string {
    return this.req.getUrl();
  }

  header(name: string): string {
    return this.req.getHeader(name);
  }

  forEachHeader(cb: (name: string, value: string) => void): void {
    this.req.forEach(cb);
  }

  /**
   * uWS percent-decodes the query in place on `getQuery(key)`, so the text
   * as sent is copied before the first key is read, and kept.
   */
  queryString(): string {
    this.rawQuery ??= this.req.getQuery() ?? "";
    return this.rawQuery;
  }

  query(key: string): string | undefined {
    this.queryString();
    return this.req.getQuery(key);
  }

  param(index: number): string | undefined {
    return this.req.getParameter(index);
  }

  remoteAddress(): string {
    return Buffer.from(this.res.getRemoteAddressAsText()).toString("latin1");
  }
}

/**
 * One HTTP exchange over uWS's HttpResponse. uWS invalidates the response
 * once the client aborts, so every write checks `aborted` first and happens
 * inside `cork` (required outside the synchronous handler).
 *
 * Pipelining: uWS (20.30 and 20.57) closes a connection when it parses the
 * next request while this one's response is pending ("denying async
 * pipelining"), and this response is then never sent. `holdConnection`
 * pauses reading until the answer, and a body is handed over only in the
 * turn after its last chunk, once uWS has parsed everything it read with it:
 * a request pipelined in the same read has by then closed the connection,
 * and the body comes back `aborted`, before anything was acted on.
 */
export class UwsExchange implements HttpExchange {
  readonly request: UwsEdgeRequest;
  protected aborted = false;
  protected answered = false;
  private held = false;
  private readonly abortListeners: Array<() => void> = [];

  constructor(
    protected readonly res: UwsResponse,
    req: UwsRequest,
  ) {
    this.request = new UwsEdgeRequest(res, req);
    res.onAborted(() => {
      this.aborted = true;
      for (const listener of this.abortListeners) listener();
    });
  }

  get isOpen(): boolean {
    return !this.aborted && !this.answered;
  }

  onAbort(listener: () => void): void {
    this.abortListeners.push(listener);
  }

  holdConnection(): void {
    if (this.held || !this.isOpen) return;
    this.held = true;
    this.res.pause();
  }

  /** Each chunk is copied: uWS reuses it after onData returns. uWS delivers data only to a handler registered in the request's turn. */
  readBody(maxBytes: number): Promise<BodyRead> {
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      this.onAbort(() => {
        if (!done) resolve({ ok: false, reason: "aborted" });
        done = true;
      });
      this.res.onData((chunk, isLast) => {
        if (done) return;
        size += chunk.byteLength;
        if (size > maxBytes) {
          done = true;
          return resolve({ ok: false, reason: "too_large" });
        }
        chunks.push(Buffer.from(chunk.slice(0)));
        if (!isLast) return;
        done = true;
        this.holdConnection();
        setImmediate(() => resolve(this.aborted ? { ok: false, reason: "aborted" } : { ok: true, body: Buffer.concat(chunks) }));
      });
    });
  }

  respond(status: number, headers: Readonly<Record<string, string>>, body: string, closeConnection = false): void {
    this.answer((res) => writeHead(res, status, headers).end(body, closeConnection));
  }

  stream(status: number, headers: Readonly<Record<string, string>>): ResponseStream | undefined {
    if (!this.isOpen) return undefined;
    this.answer((res) => writeHead(res, status, headers));
    return new UwsResponseStream(this.res, () => this.aborted);
  }

  /** Runs `write` corked, if the client is still there; marks the exchange answered and releases a held connection. */
  protected answer(write: (res: UwsResponse) => void): void {
    if (!this.isOpen) return;
    this.answered = true;
    this.res.cork(() => {
      if (this.held) this.res.resume();
      write(this.res);
    });
  }
}

class UwsResponseStream implements ResponseStream {
  private ended = false;

  constructor(
    private readonly res: UwsResponse,
    private readonly aborted: () => boolean,
  ) {}

  write(chunk: string): boolean {
    if (this.ended || this.aborted()) return false;
    let accepted = false;
    this.res.cork(() => {
      accepted = this.res.write(chunk);
    });
    return accepted;
  }

  cork(cb: () => void): void {
    if (this.ended || this.aborted()) return;
    this.res.cork(cb);
  }

  end(): void {
    if (this.ended || this.aborted()) return;
    this.ended = true;
    this.res.cork(() => this.res.end());
  }
}

function writeHead(res: UwsResponse, status: number, headers: Readonly<Record<string, string>>): UwsResponse {
  res.writeStatus(`${status} ${STATUS_TEXT[status] ?? ""}`);
  for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
  return res;
}
