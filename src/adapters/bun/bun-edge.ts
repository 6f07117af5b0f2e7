import type { EdgeServer, EdgeWebSocket, HttpHandler, HttpMethod, WebSocketRoute } from "../../core/ports/edge.js";
import { BunEdgeRequest, BunExchange, BunUpgradeExchange } from "./bun-exchange.js";
import { type BunFetch, type BunServer, type BunServerWebSocket, bunRuntime } from "./bun-serve.js";

/** What one pattern serves: a handler per method, and perhaps a WebSocket route. */
interface PatternRoutes {
  readonly paramSegments: readonly number[];
  readonly handlers: Map<HttpMethod, HttpHandler>;
  webSocket: WebSocketRoute<unknown> | undefined;
}

/** What Bun keeps as `ws.data`: the socket's route, the route's data, and the socket made at open. */
interface Held {
  readonly route: WebSocketRoute<unknown>;
  readonly data: unknown;
  socket: EdgeWebSocket<unknown> | undefined;
}

/**
 * The edge port over `Bun.serve`, whose server is uWebSockets with native
 * topics: `publish` reaches every subscribed socket without a JavaScript
 * loop, as on Node. Bun routes by pattern (its `routes`); one set of
 * WebSocket handlers per server dispatches to each socket's own route (kept
 * in `ws.data`), so any number of WebSocket paths work. Text frames reach
 * the route as the strings Bun decoded.
 *
 * Settings are the port's (see core/ports/edge.ts): no idle timeout, no
 * backpressure limit, no automatic pings, no compression. Bun has one frame cap per
 * server: the largest route's; a route with a smaller one gets the bigger
 * frames too (the session still refuses them by its own limit).
 */
export class BunEdgeServer implements EdgeServer {
  private readonly patterns = new Map<string, PatternRoutes>();
  private fallbackHandler: HttpHandler | undefined;
  private server: BunServer | undefined;

  route(method: HttpMethod, pattern: string, handler: HttpHandler): void {
    this.patternRoutes(pattern).handlers.set(method, handler);
  }

  webSocket<Data>(pattern: string, route: WebSocketRoute<Data>): void {
    this.patternRoutes(pattern).webSocket = route as WebSocketRoute<unknown>;
  }

  fallback(handler: HttpHandler): void {
    this.fallbackHandler = handler;
  }

  listen(host: string, port: number): Promise<number> {
    try {
      this.server = this.serve(host, port);
    } catch (error) {
      return Promise.reject(new Error(`could not listen on ${host}:${port}`, { cause: error }));
    }
    return Promise.resolve(this.server.port);
  }

  stopListening(): void {
    void this.server?.stop(false);
  }

  close(): void {
    void this.server?.stop(true);
    this.server = undefined;
  }

  publish(topic: string, text: string): void {
    this.server?.publish(topic, text);
  }

  subscribers(topic: string): number {
    return this.server?.subscriberCount(topic) ?? 0;
  }

  private patternRoutes(pattern: string): PatternRoutes {
    let routes = this.patterns.get(pattern);
    if (!routes) {
      const paramSegments = pattern.split("/").flatMap((segment, index) => (segment.startsWith(":") ? [index] : []));
      this.patterns.set(pattern, (routes = { paramSegments, handlers: new Map(), webSocket: undefined }));
    }
    return routes;
  }

  private serve(host: string, port: number): BunServer {
    const routes: Record<string, BunFetch> = {};
    for (const [pattern, patternRoutes] of this.patterns) routes[pattern] = (request, server) => this.dispatch(patternRoutes, request, server);
    const webSockets = [...this.patterns.values()].flatMap((entry) => (entry.webSocket ? [entry.webSocket] : []));
    return bunRuntime().serve<Held>({
      hostname: host,
      port,
      routes,
      fetch: (request, server) => this.answer(this.fallbackHandler, new BunExchange(new BunEdgeRequest(request, server, []), server)),
      websocket: {
        maxPayloadLength: Math.max(0, ...webSockets.map((route) => route.maxPayloadBytes)),
        backpressureLimit: 0,
        closeOnBackpressureLimit: false,
        idleTimeout: 0,
        sendPings: false,
        perMessageDeflate: false,
        open: (ws) => {
          ws.data.socket = edgeSocket(ws);
          ws.data.route.open(ws.data.socket);
        },
        message: (ws, message) => {
          const socket = ws.data.socket;
          if (!socket) return;
          if (typeof message === "string") ws.data.route.text(socket, message, Buffer.byteLength(message, "utf8"));
          else ws.data.route.binary(socket, message.byteLength);
        },
        ping: (ws) => {
          if (ws.data.socket) ws.data.route.ping(ws.data.socket);
        },
        pong: (ws) => {
          if (ws.data.socket) ws.data.route.pong(ws.data.socket);
        },
        close: (ws, code) => {
          if (ws.data.socket) ws.data.route.close(ws.data.socket, code);
        },
      },
    });
  }

  /** As on uWS: a request without a WebSocket upgrade on a WebSocket path, or with another method, falls through. */
  private dispatch(routes: PatternRoutes, raw: Request, server: BunServer): Response | Promise<Response | undefined> {
    const request = new BunEdgeRequest(raw, server, routes.paramSegments);
    const webSocket = routes.webSocket;
    if (webSocket && request.method === "get" && request.header("upgrade").toLowerCase() === "websocket") {
      const exchange = new BunUpgradeExchange<unknown>(request, server, (upgrading, data) =>
        server.upgrade(upgrading, { data: { route: webSocket, data, socket: undefined } satisfies Held }),
      );
      webSocket.upgrade(exchange);
      return exchange.result;
    }
    const handler = routes.handlers.get(request.method as HttpMethod) ?? this.fallbackHandler;
    return this.answer(handler, new BunExchange(request, server));
  }

  private answer(handler: HttpHandler | undefined, exchange: BunExchange): Response | Promise<Response | undefined> {
    if (!handler) return new Response("", { status: 404 });
    handler(exchange);
    return exchange.result;
  }
}

/** Bun's socket as the port's. Bun itself ignores calls on a closed socket (and counts nothing buffered on it). */
function edgeSocket(ws: BunServerWebSocket<Held>): EdgeWebSocket<unknown> {
  return {
    data: ws.data.data,
    send: (text) => void ws.send(text),
    cork: (cb) => ws.cork(cb),
    close: (code, reason) => ws.close(code, reason),
    subscribe: (topic) => ws.subscribe(topic),
    unsubscribe: (topic) => ws.unsubscribe(topic),
    // Bun's ServerWebSocket.publish skips the publishing socket itself.
    publishToOthers: (topic, text) => void ws.publish(topic, text),
    bufferedBytes: () => ws.getBufferedAmount(),
    ping: () => void ws.ping(),
  };
}
