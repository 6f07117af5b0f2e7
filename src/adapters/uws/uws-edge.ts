import type { EdgeServer, EdgeWebSocket, HttpHandler, HttpMethod, UpgradeExchange, WebSocketRoute } from "../../core/ports/edge.js";
import type { UwsApi, UwsApp, UwsListenSocket, UwsRequest, UwsResponse, UwsUpgradeContext, UwsWebSocket } from "./uws-api.js";
import { UwsExchange } from "./uws-exchange.js";

/** What uWS keeps as a socket's user data: the route's data, and the socket made at open. */
interface Held<Data> {
  readonly data: Data;
  socket: UwsEdgeWebSocket<Data> | undefined;
}

/**
 * The edge port over uWebSockets.js. WebSocket settings, and why:
 * - `maxPayloadLength` is the route's; uWS drops a frame over it with 1006
 *   and no close frame, so routes set it above the protocol's own limit.
 * - idleTimeout 0: uWS would close silent sockets with 1006; the session
 *   owns the heartbeat TTL.
 * - maxBackpressure 0 (no uWS limit) and no closeOnBackpressureLimit: over
 *   its limit uWS silently skips a socket in `publish`, drops even the close
 *   frame, and closes with 1006; the gateway's inspection closes a slow
 *   socket itself, its close frame queued behind the buffered events.
 */
export class UwsEdgeServer implements EdgeServer {
  private readonly app: UwsApp;
  private listenSocket: UwsListenSocket | undefined;

  constructor(private readonly uws: UwsApi) {
    this.app = uws.App();
  }

  route(method: HttpMethod, pattern: string, handler: HttpHandler): void {
    this.app[method](pattern, (res, req) => handler(new UwsExchange(res, req)));
  }

  fallback(handler: HttpHandler): void {
    this.app.any("/*", (res, req) => handler(new UwsExchange(res, req)));
  }

  webSocket<Data>(pattern: string, route: WebSocketRoute<Data>): void {
    this.app.ws<Held<Data>>(pattern, {
      compression: this.uws.DISABLED,
      maxPayloadLength: route.maxPayloadBytes,
      idleTimeout: 0,
      maxBackpressure: 0,
      closeOnBackpressureLimit: false,
      sendPingsAutomatically: false,
      upgrade: (res, req, context) => {
        const exchange = new UwsUpgradeExchange<Data>(res, req, context);
        route.upgrade(exchange);
        exchange.handlerReturned();
      },
      open: (ws) => {
        const held = ws.getUserData();
        held.socket = new UwsEdgeWebSocket(ws, held.data);
        route.open(held.socket);
      },
      message: (ws, message, isBinary) => {
        const socket = ws.getUserData().socket;
        if (!socket) return;
        // Decoded now: uWS reuses `message` once this handler returns.
        if (isBinary) route.binary(socket, message.byteLength);
        else route.text(socket, Buffer.from(message).toString("utf8"), message.byteLength);
      },
      ping: (ws) => {
        const socket = ws.getUserData().socket;
        if (socket) route.ping(socket);
      },
      pong: (ws) => {
        const socket = ws.getUserData().socket;
        if (socket) route.pong(socket);
      },
      close: (ws, code) => {
        const socket = ws.getUserData().socket;
        if (!socket) return;
        socket.markClosed();
        route.close(socket, code);
      },
    });
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (socket) => {
        if (!socket) return reject(new Error(`could not listen on ${host}:${port}`));
        this.listenSocket = socket;
        resolve(this.uws.us_socket_local_port(socket));
      });
    });
  }

  stopListening(): void {
    if (this.listenSocket) this.uws.us_listen_socket_close(this.listenSocket);
    this.listenSocket = undefined;
  }

  close(): void {
    this.stopListening();
    this.app.close();
  }

  publish(topic: string, text: string): void {
    this.app.publish(topic, text, false, false);
  }

  subscribers(topic: string): number {
    return this.app.numSubscribers(topic);
  }
}

/**
 * An upgrade request. The handshake headers are read in the handler's turn
 * (the request dies at the first await). Accepted in that turn, uWS is
 * already corked; accepted after an await, the upgrade is corked here.
 */
class UwsUpgradeExchange<Data> extends UwsExchange implements UpgradeExchange<Data> {
  private readonly key: string;
  private readonly protocol: string;
  private readonly extensions: string;
  private inHandler = true;

  constructor(
    res: UwsResponse,
    req: UwsRequest,
    private readonly context: UwsUpgradeContext,
  ) {
    super(res, req);
    this.key = req.getHeader("sec-websocket-key");
    this.protocol = req.getHeader("sec-websocket-protocol");
    this.extensions = req.getHeader("sec-websocket-extensions");
  }

  handlerReturned(): void {
    this.inHandler = false;
  }

  accept(data: Data): void {
    if (!this.isOpen) return;
    const held: Held<Data> = { data, socket: undefined };
    if (this.inHandler) {
      this.answered = true;
      this.res.upgrade(held, this.key, this.protocol, this.extensions, this.context);
    } else this.answer((res) => res.upgrade(held, this.key, this.protocol, this.extensions, this.context));
  }
}

/**
 * A topic every socket holds from open to close; no channel has this name
 * (channels are `namespace:id`) and nothing is published to it. uWS.js
 * (20.30) frees a socket's subscriber state when the socket leaves its last
 * topic, and with it the frames published to the socket in this turn and not
 * yet written, so an unsubscribe right after a publish would lose an event
 * the publish counted as handed over (Bun's server keeps them). Holding this
 * topic keeps that state until the close, which writes them before the close
 * frame (test/contract/session-socket.contract.ts).
 */
const SUBSCRIBER_ANCHOR_TOPIC = "sobranie/socket";

/** uWS throws on any call to a closed socket: `closed` is set by close() and by the close handler, and checked first. */
class UwsEdgeWebSocket<Data> implements EdgeWebSocket<Data> {
  private closed = false;

  constructor(
    private readonly ws: UwsWebSocket<Held<Data>>,
    readonly data: Data,
  ) {
    ws.subscribe(SUBSCRIBER_ANCHOR_TOPIC);
  }

  markClosed(): void {
    this.closed = true;
  }

  send(text: string): void {
    if (!this.closed) this.ws.send(text, false, false);
  }

  cork(cb: () => void): void {
    if (!this.closed) this.ws.cork(cb);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.end(code, reason);
  }

  subscribe(topic: string): void {
    if (!this.closed) this.ws.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    if (!this.closed) this.ws.unsubscribe(topic);
  }

  ping(): void {
    if (!this.closed) this.ws.ping();
  }

  /** uWS's WebSocket.publish skips the publishing socket itself. */
  publishToOthers(topic: string, text: string): void {
    if (!this.closed) this.ws.publish(topic, text, false, false);
  }

  bufferedBytes(): number {
    return this.closed ? 0 : this.ws.getBufferedAmount();
  }
}
