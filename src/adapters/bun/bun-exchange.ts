import type { BodyRead, EdgeRequest, HttpExchange, ResponseStream, UpgradeExchange } from "../../core/ports/edge.js";
import { type BunDirectController, type BunServer, directStream } from "./bun-serve.js";

/** The request view over a fetch `Request`; it stays valid after awaits. */
export class BunEdgeRequest implements EdgeRequest {
  readonly method: string;
  readonly path: string;
  private readonly queryText: string;

  /** `paramSegments`: the positions of the route pattern's `:name` segments in the path. */
  constructor(
    readonly raw: Request,
    private readonly server: BunServer,
    private readonly paramSegments: readonly number[],
  ) {
    this.method = raw.method.toLowerCase();
    // raw.url is absolute: scheme://host/path?query#never-sent
    const url = raw.url;
    const start = url.indexOf("/", url.indexOf("//") + 2);
    const mark = url.indexOf("?", start);
    this.path = start < 0 ? "/" : url.slice(start, mark < 0 ? undefined : mark);
    this.queryText = mark < 0 ? "" : url.slice(mark + 1);
  }

  header(name: string): string {
    return this.raw.headers.get(name) ?? "";
  }

  forEachHeader(cb: (name: string, value: string) => void): void {
    this.raw.headers.forEach((value, name) => cb(name, value));
  }

  queryString(): string {
    return this.queryText;
  }

  query(key: string): string | undefined {
    for (const pair of this.queryText.split("&")) {
      const equals = pair.indexOf("=");
      if ((equals < 0 ? pair : pair.slice(0, equals)) !== key) continue;
      const value = equals < 0 ? "" : pair.slice(equals + 1);
      if (value === "") return undefined;
      try {
        return decodeURIComponent(value.replaceAll("+", " "));
      } catch {
        return undefined;
      }
    }
    return undefined;
  }

  param(index: number): string | undefined {
    const segment = this.paramSegments[index];
    return segment === undefined ? undefined : this.path.split("/")[segment];
  }

  remoteAddress(): string {
    return this.server.requestIP(this.raw)?.address ?? "";
  }
}

/**
 * One exchange over the fetch handler's result. Guarantees:
 * - `result` settles once: with a buffered Response on `respond`, with a
 *   streaming Response (a direct ReadableStream) on `stream`, or with
 *   undefined after a WebSocket upgrade;
 * - the stream's `write` returns false while Bun holds bytes the client has
 *   not taken (the direct stream's write answered with a promise);
 * - abort listeners run once if the client leaves before the answer ends;
 *   after that every call is a no-op, and `result` settles (if it had not)
 *   with a response nobody receives.
 */
export class BunExchange implements HttpExchange {
  readonly result: Promise<Response | undefined>;
  protected settle!: (response: Response | undefined) => void;
  protected answered = false;
  private aborted = false;
  private readonly abortListeners: Array<() => void> = [];
  private endStream: (() => void) | undefined;

  constructor(
    readonly request: BunEdgeRequest,
    protected readonly server: BunServer,
  ) {
    this.result = new Promise((resolve) => (this.settle = resolve));
    request.raw.signal.addEventListener("abort", () => {
      if (this.aborted || (this.answered && this.endStream === undefined)) return;
      this.aborted = true;
      this.endStream?.();
      // Settled so Bun can release the request; the connection is gone, nothing is sent.
      this.settle(new Response(null, { status: 499 }));
      for (const listener of this.abortListeners) listener();
    });
  }

  get isOpen(): boolean {
    return !this.aborted && !this.answered;
  }

  onAbort(listener: () => void): void {
    this.abortListeners.push(listener);
  }

  /**
   * A no-op: Bun's fetch handler has no way to stop reading a connection. Bun
   * closes a connection whose next request arrives while a response is
   * pending, as uWS does; a request pipelined in the same read is still
   * refused before it is acted on (the body is handed over a turn later),
   * one arriving later is not (docs/protocol.md §7.2).
   */
  holdConnection(): void {}

  readBody(maxBytes: number): Promise<BodyRead> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (read: BodyRead): void => {
        if (!done) resolve(read);
        done = true;
      };
      this.onAbort(() => finish({ ok: false, reason: "aborted" }));
      const chunks: Uint8Array[] = [];
      let size = 0;
      const pump = async (): Promise<void> => {
        const reader = this.request.raw.body?.getReader();
        for (;;) {
          const next = reader ? await reader.read() : { done: true as const, value: undefined };
          if (done) return void reader?.cancel().catch(() => undefined);
          if (next.done) break;
          size += next.value.byteLength;
          if (size > maxBytes) {
            void reader?.cancel().catch(() => undefined);
            return finish({ ok: false, reason: "too_large" });
          }
          chunks.push(next.value);
        }
        setImmediate(() => finish(this.aborted ? { ok: false, reason: "aborted" } : { ok: true, body: Buffer.concat(chunks) }));
      };
      pump().catch(() => undefined); // a body cut short: the abort signal tells the reader
    });
  }

  /** `closeConnection`: Bun closes a connection whose response says `Connection: close`. */
  respond(status: number, headers: Readonly<Record<string, string>>, body: string, closeConnection = false): void {
    if (!this.isOpen) return;
    this.answered = true;
    this.settle(new Response(body, { status, headers: closeConnection ? { ...headers, connection: "close" } : headers }));
  }

  stream(status: number, headers: Readonly<Record<string, string>>): ResponseStream | undefined {
    if (!this.isOpen) return undefined;
    this.answered = true;
    // Bun's HTTP idle timeout (10 s) would cut a quiet stream between keep-alives.
    this.server.timeout(this.request.raw, 0);
    const stream = new BunResponseStream(() => this.aborted);
    this.endStream = () => stream.abandon();
    this.settle(new Response(stream.body, { status, headers }));
    return stream;
  }
}

/** An upgrade request: Bun checks the handshake and picks the client's first offered subprotocol itself. */
export class BunUpgradeExchange<Data> extends BunExchange implements UpgradeExchange<Data> {
  constructor(
    request: BunEdgeRequest,
    server: BunServer,
    private readonly upgraded: (request: Request, data: Data) => boolean,
  ) {
    super(request, server);
  }

  /** A request Bun refuses to upgrade is answered 400. */
  accept(data: Data): void {
    if (!this.isOpen) return;
    this.answered = true;
    if (this.upgraded(this.request.raw, data)) this.settle(undefined);
    else this.settle(new Response("not a WebSocket upgrade", { status: 400 }));
  }
}

/** A direct stream's writes; those made before Bun asked for the body (right after the Response is handed over) wait in `early`. */
class BunResponseStream implements ResponseStream {
  readonly body: ReadableStream<Uint8Array>;
  private controller: BunDirectController | undefined;
  private early: string[] = [];
  private ended = false;
  private release: (() => void) | undefined;

  constructor(private readonly aborted: () => boolean) {
    this.body = directStream((controller) => {
      this.controller = controller;
      for (const chunk of this.early) controller.write(chunk);
      this.early = [];
      return new Promise<void>((resolve) => {
        this.release = resolve;
        if (this.ended) this.finish();
      });
    });
  }

  write(chunk: string): boolean {
    if (this.ended || this.aborted()) return false;
    if (!this.controller) {
      this.early.push(chunk);
      return true;
    }
    const written = this.controller.write(chunk);
    if (typeof written === "number") return true;
    written.catch(() => undefined); // rejects when the client leaves; the abort signal reports that
    return false;
  }

  /** Bun batches a tick's writes by itself. */
  cork(cb: () => void): void {
    cb();
  }

  end(): void {
    if (this.ended || this.aborted()) return;
    this.ended = true;
    if (this.controller) this.finish();
  }

  /** The client left: nothing more is written, and the pull settles. */
  abandon(): void {
    this.ended = true;
    this.release?.();
  }

  private finish(): void {
    this.controller?.end();
    this.release?.();
  }
}
