/**
 * The part of the uWebSockets.js API the uWS edge adapter (uws-edge.ts)
 * uses, declared once: both pinned native builds satisfy it (checked in
 * load-native-uws.ts), so a call outside the subset is a compile error.
 *
 * Semantics are uWS's: handlers run synchronously, a request is only valid
 * until the handler's first await, a response after its abort must not be
 * touched, and `message` buffers are only valid during the handler.
 */

/** Opaque: what `listen` hands back, for `us_socket_local_port` and `us_listen_socket_close`. */
export type UwsListenSocket = object;

/** Opaque: the upgrade handler's context, passed back to `res.upgrade`. */
export type UwsUpgradeContext = object;

export interface UwsApi {
  App(): UwsApp;
  /** `compression` value: no permessage-deflate. */
  readonly DISABLED: number;
  us_socket_local_port(listenSocket: UwsListenSocket): number;
  /** Stops accepting connections; open ones stay. */
  us_listen_socket_close(listenSocket: UwsListenSocket): void;
}

export type UwsHttpHandler = (res: UwsResponse, req: UwsRequest) => void;

export interface UwsApp {
  get(pattern: string, handler: UwsHttpHandler): UwsApp;
  post(pattern: string, handler: UwsHttpHandler): UwsApp;
  any(pattern: string, handler: UwsHttpHandler): UwsApp;
  ws<UserData>(pattern: string, behavior: UwsWebSocketBehavior<UserData>): UwsApp;
  listen(host: string, port: number, cb: (listenSocket: UwsListenSocket | false) => void): UwsApp;
  /** Closes the listen socket and every open connection. */
  close(): UwsApp;
  /** Sends to every WebSocket subscribed to `topic`. */
  publish(topic: string, message: string, isBinary?: boolean, compress?: boolean): boolean;
  numSubscribers(topic: string): number;
}

export interface UwsRequest {
  /** `name` in lower case; "" when absent. */
  getHeader(name: string): string;
  /** The whole query string as sent (not decoded), without `?`; undefined (native uWS) or "" when there is none. */
  getQuery(): string | undefined;
  /** One query value, percent-decoded; undefined when absent. */
  getQuery(key: string): string | undefined;
  /** A `:name` segment of the route pattern, by position, as sent (not decoded). */
  getParameter(index: number): string | undefined;
  getUrl(): string;
  /** In lower case. */
  getMethod(): string;
  forEach(cb: (key: string, value: string) => void): void;
}

export interface UwsResponse {
  writeStatus(status: string): UwsResponse;
  writeHeader(key: string, value: string): UwsResponse;
  /** False while bytes are held back (the client is not reading fast enough). */
  write(chunk: string): boolean;
  /** `closeConnection`: adds `Connection: close` and closes once the response is written (outside a handler's own turn: see PendingReply). */
  end(body?: string, closeConnection?: boolean): UwsResponse;
  /** Stops reading from the connection (no further request or body bytes are parsed) until `resume`. */
  pause(): void;
  resume(): void;
  /** The peer's IP address as text (IPv4 dotted, IPv6 in full hex groups); valid until the first await. */
  getRemoteAddressAsText(): ArrayBuffer;
  cork(cb: () => void): UwsResponse;
  onAborted(handler: () => void): UwsResponse;
  /** Body chunks; each is valid only during the call. */
  onData(handler: (chunk: ArrayBuffer, isLast: boolean) => void): UwsResponse;
  upgrade<UserData>(userData: UserData, secWebSocketKey: string, secWebSocketProtocol: string, secWebSocketExtensions: string, context: UwsUpgradeContext): void;
}

export interface UwsWebSocket<UserData> {
  send(message: string, isBinary?: boolean, compress?: boolean): number;
  /** Sends made inside `cb` leave in one write. */
  cork(cb: () => void): UwsWebSocket<UserData>;
  end(code?: number, shortMessage?: string): void;
  subscribe(topic: string): boolean;
  unsubscribe(topic: string): boolean;
  /** Sends to every WebSocket subscribed to `topic` except this one. */
  publish(topic: string, message: string, isBinary?: boolean, compress?: boolean): boolean;
  getBufferedAmount(): number;
  /** Sends a ping frame. */
  ping(message?: string): number;
  getUserData(): UserData;
}

export interface UwsWebSocketBehavior<UserData> {
  compression?: number;
  /** A frame over this closes the socket without reaching `message`. */
  maxPayloadLength?: number;
  /** Seconds; 0 disables. */
  idleTimeout?: number;
  /** Bytes; 0 is no limit. */
  maxBackpressure?: number;
  closeOnBackpressureLimit?: boolean;
  sendPingsAutomatically?: boolean;
  upgrade?: (res: UwsResponse, req: UwsRequest, context: UwsUpgradeContext) => void;
  open?: (ws: UwsWebSocket<UserData>) => void;
  /** Text frames arrive as their UTF-8 bytes, with isBinary false. */
  message?: (ws: UwsWebSocket<UserData>, message: ArrayBuffer, isBinary: boolean) => void;
  ping?: (ws: UwsWebSocket<UserData>, message: ArrayBuffer) => void;
  pong?: (ws: UwsWebSocket<UserData>, message: ArrayBuffer) => void;
  close?: (ws: UwsWebSocket<UserData>, code: number, message: ArrayBuffer) => void;
}
