import type { UwsRequest, UwsResponse, UwsUpgradeContext } from "../../core/ports/uws-api.js";
import { type BunDirectController, type BunServer, directStream } from "./bun-serve.js";

const encoder = new TextEncoder();

/** uWS's HttpRequest over a fetch `Request`. `params` are the route's `:name` segments, raw. */
export class BunHttpRequest implements UwsRequest {
  readonly path: string;
  private readonly query: string;

  constructor(
    readonly request: Request,
    private params: readonly string[] = [],
  ) {
    // request.url is absolute: scheme://host/path?query#never-sent
    const url = request.url;
    const start = url.indexOf("/", url.indexOf("//") + 2);
    const mark = url.indexOf("?", start);
    this.path = start < 0 ? "/" : url.slice(start, mark < 0 ? undefined : mark);
    this.query = mark < 0 ? "" : url.slice(mark + 1);
  }

  /** Set by the router once the route is known. */
  withParams(params: readonly string[]): this {
    this.params = params;
    return this;
  }

  getHeader(name: string): string {
    return this.request.headers.get(name) ?? "";
  }

  /** Without a key: the whole query as sent. With one: its value, percent-decoded like uWS (`+` stays `+`); a malformed escape is returned as sent. */
  getQuery(): string | undefined;
  getQuery(key: string): string | undefined;
  getQuery(key?: string): string | undefined {
    if (key === undefined) return this.query;
    for (const pair of this.query.split("&")) {
      const equals = pair.indexOf("=");
      const name = equals < 0 ? pair : pair.slice(0, equals);
      if (name !== key) continue;
      const value = equals < 0 ? "" : pair.slice(equals + 1);
      try {
        return decodeURIComponent(value);
      } catch {
        return value;
      }
    }
    return undefined;
  }

  getParameter(index: number): string | undefined {
    return this.params[index];
  }

  getUrl(): string {
    return this.path;
  }

  getMethod(): string {
    return this.request.method.toLowerCase();
  }

  forEach(cb: (key: string, value: string) => void): void {
    this.request.headers.forEach((value, key) => cb(key, value));
  }
}

/**
 * uWS's HttpResponse over the fetch handler's result. Guarantees:
 * - `result` settles once: with a buffered Response on `end` before any
 *   `write`, with a streaming Response (a direct ReadableStream) on the first
 *   `write`, or with undefined after a WebSocket upgrade;
 * - `write` returns false while Bun holds bytes the client has not taken
 *   (the direct stream's write answered with a promise), as uWS does;
 * - `onAborted` handlers run once if the client leaves before `end`; after
 *   that every call is a no-op (uWS would crash; here nothing is sent), and
 *   `result` settles (if it had not) with a response nobody receives.
 */
export class BunHttpResponse implements UwsResponse {
  readonly result: Promise<Response | undefined>;
  private settle!: (response: Response | undefined) => void;
  private status = 200;
  private statusText = "OK";
  private readonly headers: Array<[string, string]> = [];
  private ended = false;
  private aborted = false;
  private streaming = false;
  private controller: BunDirectController | undefined;
  /** Written before Bun asked for the body (it does so right after the Response is handed over). */
  private early: string[] = [];
  private endStream: (() => void) | undefined;

  constructor(
    private readonly req: BunHttpRequest,
    private readonly server: BunServer,
  ) {
    this.result = new Promise((resolve) => (this.settle = resolve));
  }

  writeStatus(status: string): this {
    const space = status.indexOf(" ");
    this.status = Number.parseInt(space < 0 ? status : status.slice(0, space), 10);
    this.statusText = space < 0 ? "" : status.slice(space + 1);
    return this;
  }

  writeHeader(key: string, value: string): this {
    this.headers.push([key, value]);
    return this;
  }

  write(chunk: string): boolean {
    if (this.ended || this.aborted) return false;
    if (!this.streaming) this.startStream();
    if (!this.controller) {
      this.early.push(chunk);
      return true;
    }
    const written = this.controller.write(chunk);
    if (typeof written === "number") return true;
    written.catch(() => undefined); // rejects when the client leaves; onAborted reports that
    return false;
  }

  /** `closeConnection`: Bun closes a connection whose response says `Connection: close`. */
  end(body?: string, closeConnection = false): this {
    if (this.ended || this.aborted) return this;
    if (closeConnection && !this.streaming) this.headers.push(["connection", "close"]);
    if (!this.streaming) {
      this.ended = true;
      this.settle(new Response(body ?? "", { status: this.status, statusText: this.statusText, headers: this.headers }));
      return this;
    }
    if (body !== undefined && body !== "") this.write(body);
    this.ended = true;
    if (this.controller) this.finishStream();
    return this;
  }

  /**
   * No-ops: Bun's fetch handler has no way to stop reading a connection. Bun
   * closes a connection whose next request arrives while a response is
   * pending, as uWS does; a request pipelined in the same read is still
   * refused before it is acted on (PendingReply hands a body over a turn
   * later), one arriving later is not (docs/protocol.md §7.2).
   */
  pause(): void {}

  resume(): void {}

  getRemoteAddressAsText(): ArrayBuffer {
    return encoder.encode(this.server.requestIP(this.req.request)?.address ?? "").buffer as ArrayBuffer;
  }

  /** Bun batches a tick's writes by itself. */
  cork(cb: () => void): this {
    cb();
    return this;
  }

  onAborted(handler: () => void): this {
    this.req.request.signal.addEventListener("abort", () => {
      if (this.ended || this.aborted) return;
      this.aborted = true;
      this.endStream?.();
      // Settled so Bun can release the request; the connection is gone, nothing is sent.
      this.settle(new Response(null, { status: 499 }));
      handler();
    });
    return this;
  }

  /** Body chunks as ArrayBuffers, then an empty last one. Reading stops once the response ended. */
  onData(handler: (chunk: ArrayBuffer, isLast: boolean) => void): this {
    const body = this.req.request.body;
    if (!body) {
      queueMicrotask(() => handler(new ArrayBuffer(0), true));
      return this;
    }
    const reader = body.getReader();
    const pump = async (): Promise<void> => {
      for (;;) {
        const { value, done } = await reader.read();
        if (this.ended || this.aborted) return void reader.cancel().catch(() => undefined);
        if (done) return handler(new ArrayBuffer(0), true);
        handler(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) as ArrayBuffer, false);
      }
    };
    pump().catch(() => undefined); // a body cut short: the abort signal tells the handler
    return this;
  }

  /**
   * Bun picks the client's first offered subprotocol itself; key, protocol
   * and extensions are Bun's to check. A request Bun refuses to upgrade is
   * answered 400.
   */
  upgrade<UserData>(userData: UserData, _key: string, _protocol: string, _extensions: string, _context: UwsUpgradeContext): void {
    if (this.ended || this.aborted) return;
    this.ended = true;
    if (this.server.upgrade(this.req.request, { data: { userData, socket: undefined } })) this.settle(undefined);
    else this.settle(new Response("not a WebSocket upgrade", { status: 400 }));
  }

  private startStream(): void {
    this.streaming = true;
    // Bun's HTTP idle timeout (10 s) would cut a quiet stream between keep-alives.
    this.server.timeout(this.req.request, 0);
    const stream = directStream((controller) => {
      this.controller = controller;
      for (const chunk of this.early) controller.write(chunk);
      this.early = [];
      return new Promise<void>((resolve) => {
        this.endStream = resolve;
        if (this.ended) this.finishStream();
      });
    });
    this.settle(new Response(stream, { status: this.status, statusText: this.statusText, headers: this.headers }));
  }

  private finishStream(): void {
    this.controller?.end();
    this.endStream?.();
  }
}
