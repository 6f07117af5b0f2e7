/**
 * The HTTP/WebSocket/SSE edge, runtime-neutral: what the routes of src/http/
 * are written against, once. Two adapters implement it: adapters/uws
 * (uWebSockets.js on Node) and adapters/bun (`Bun.serve`); app/runtime.ts
 * picks one. The core itself never uses it; it sits with the other ports so
 * that neither adapter imports the other.
 *
 * Guarantees every implementation gives (test/contract/edge.contract.ts):
 * - a handler runs synchronously; its `EdgeRequest` is read in that turn only
 *   (uWS invalidates it at the first await), everything else stays valid;
 * - an exchange is answered once: after `respond`, `stream` or an upgrade's
 *   `accept`, and after the client left, every further answer is a no-op
 *   (never a crash), and may be made after any await;
 * - a WebSocket is never closed by the runtime on its own for idleness or
 *   backpressure, never pinged but by `ping`, and never compressed: the
 *   session owns the heartbeat, the send-buffer limit and their close codes.
 */

export interface EdgeRequest {
  /** In lower case. */
  readonly method: string;
  /** Without the query. */
  readonly path: string;
  /** `name` in lower case; "" when absent. */
  header(name: string): string;
  /** Every header line as received (a runtime may join repeats of one name into one value). */
  forEachHeader(cb: (name: string, value: string) => void): void;
  /** The query as sent (not decoded), without `?`; "" when there is none. Signed requests (the Pusher REST API) check every parameter of it. */
  queryString(): string;
  /** The first value of a query key, percent-decoded with `+` as a space; undefined when absent, empty or malformed (uWS's rules). */
  query(key: string): string | undefined;
  /** A `:name` segment of the route pattern, by position, as sent (not decoded). */
  param(index: number): string | undefined;
  /** The peer's IP address as text (IPv4 dotted, IPv6 in full hex groups). */
  remoteAddress(): string;
}

export type BodyRead = { ok: true; body: Uint8Array } | { ok: false; reason: "too_large" | "aborted" };

export interface HttpExchange {
  readonly request: EdgeRequest;
  /** False once answered or once the client left. */
  readonly isOpen: boolean;
  /** Runs once if the client leaves before the exchange is answered (or while it streams). */
  onAbort(listener: () => void): void;
  /**
   * Reads nothing more from the connection until this exchange is answered,
   * so a pipelined request waits instead of making the runtime close the
   * connection under a pending response. A no-op where the runtime cannot
   * (Bun: docs/protocol.md §7.2).
   */
  holdConnection(): void;
  /**
   * The request body, up to `maxBytes`. Call in the handler's own turn. It is
   * handed over in a turn after its last chunk, once the runtime parsed
   * whatever it read with it (a request pipelined in the same read makes it
   * `aborted`), and the connection is held meanwhile.
   */
  readBody(maxBytes: number): Promise<BodyRead>;
  /** The whole answer. `closeConnection` adds `Connection: close` and closes once it is written. */
  respond(status: number, headers: Readonly<Record<string, string>>, body: string, closeConnection?: boolean): void;
  /** Starts a streaming answer (SSE); undefined when the exchange is no longer open. */
  stream(status: number, headers: Readonly<Record<string, string>>): ResponseStream | undefined;
}

/** A streaming response body. After the client left every call is a no-op. */
export interface ResponseStream {
  /** False while bytes are held back (the client is not reading fast enough); they are still sent. */
  write(chunk: string): boolean;
  /** Writes made inside `cb` leave together. */
  cork(cb: () => void): void;
  end(): void;
}

/** A WebSocket upgrade request: answered like any exchange (a refusal), or accepted. */
export interface UpgradeExchange<Data> extends HttpExchange {
  /** Completes the upgrade with `data` as the socket's; a no-op once the exchange is closed. */
  accept(data: Data): void;
}

/** One accepted WebSocket, as the route sees it. Every call after close is a no-op. */
export interface EdgeWebSocket<Data> {
  readonly data: Data;
  send(text: string): void;
  /** Sends made inside `cb` leave in one write. */
  cork(cb: () => void): void;
  close(code: number, reason: string): void;
  /** Joins the runtime's native topic, reached by `EdgeServer.publish`. */
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  /**
   * Sends to every socket subscribed to `topic` except this one, natively (how
   * a socket is left out of an event: the Pusher protocol's exclusion),
   * whether or not this socket has joined `topic` (an event goes to every
   * Pusher name of its channel, the sender's own or not).
   */
  publishToOthers(topic: string, text: string): void;
  /** Bytes written but not yet taken by the kernel. */
  bufferedBytes(): number;
  /** Sends a WebSocket ping frame; the client's pong comes to the route's `pong`. */
  ping(): void;
}

export interface WebSocketRoute<Data> {
  /** A frame over this closes the socket without reaching `text` (set it above the protocol's own limit). */
  readonly maxPayloadBytes: number;
  /** Decides the upgrade: `exchange.accept(data)` (now or after an await, the sooner the better), or answers a refusal. */
  upgrade(exchange: UpgradeExchange<Data>): void;
  open(socket: EdgeWebSocket<Data>): void;
  /** A text frame, decoded; `bytes` is its UTF-8 length. */
  text(socket: EdgeWebSocket<Data>, text: string, bytes: number): void;
  binary(socket: EdgeWebSocket<Data>, bytes: number): void;
  ping(socket: EdgeWebSocket<Data>): void;
  /** The client's answer to `EdgeWebSocket.ping` (or a pong it sent unasked). */
  pong(socket: EdgeWebSocket<Data>): void;
  /** After this, the socket's calls are no-ops. */
  close(socket: EdgeWebSocket<Data>, code: number): void;
}

export type HttpMethod = "get" | "post";

export type HttpHandler = (exchange: HttpExchange) => void;

/**
 * One server of the runtime. Patterns are `/a/b` or `/a/:name`; a static
 * segment wins over a `:name` one. A request no route takes (including a GET
 * on a WebSocket path without an upgrade) goes to `fallback`.
 */
export interface EdgeServer {
  route(method: HttpMethod, pattern: string, handler: HttpHandler): void;
  /** Any number of WebSocket paths, each with its own route. */
  webSocket<Data>(pattern: string, route: WebSocketRoute<Data>): void;
  fallback(handler: HttpHandler): void;
  /** Resolves with the bound port (useful with port 0). Routes are registered before. */
  listen(host: string, port: number): Promise<number>;
  /** Stops accepting connections; open ones stay. Idempotent. */
  stopListening(): void;
  /** Closes the listener and every open connection. */
  close(): void;
  /** Sends to every WebSocket subscribed to `topic`, without a JavaScript loop. */
  publish(topic: string, text: string): void;
  subscribers(topic: string): number;
}
