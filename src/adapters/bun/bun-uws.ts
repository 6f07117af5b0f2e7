import type { UwsApi, UwsApp, UwsHttpHandler, UwsListenSocket, UwsWebSocket, UwsWebSocketBehavior } from "../../core/ports/uws-api.js";
import { BunHttpRequest, BunHttpResponse } from "./bun-http.js";
import { BunRouter } from "./bun-router.js";
import { type BunServer, type BunServerWebSocket, bunRuntime } from "./bun-serve.js";

/** `compression` has one value here: Bun's permessage-deflate stays off. */
const DISABLED = 0;

/**
 * The uWS API subset (core/ports/uws-api.ts) over `Bun.serve`, whose server is
 * uWebSockets with the same native topics: `publish` reaches every
 * subscribed socket without a JavaScript loop, as on Node.
 */
export function createBunUws(): UwsApi {
  return {
    App: () => new BunApp(),
    DISABLED,
    us_socket_local_port: (listenSocket) => (listenSocket as BunListenSocket).server.port,
    us_listen_socket_close: (listenSocket) => void (listenSocket as BunListenSocket).server.stop(false),
  };
}

interface BunListenSocket {
  readonly server: BunServer;
}

/** What Bun keeps as `ws.data`: the uWS user data, and the uWS-shaped socket made at open. */
interface SocketData {
  readonly userData: unknown;
  socket: BunUwsWebSocket<unknown> | undefined;
}

const UPGRADE_CONTEXT = {};
const encoder = new TextEncoder();

/**
 * One `ws()` route per app: Bun has one set of WebSocket handlers and
 * settings per server (the gateway has one WebSocket endpoint).
 */
class BunApp implements UwsApp {
  private readonly router = new BunRouter();
  private wsRoute: { pattern: BunRouter; behavior: UwsWebSocketBehavior<unknown> } | undefined;
  private server: BunServer | undefined;

  get(pattern: string, handler: UwsHttpHandler): this {
    this.router.add("get", pattern, handler);
    return this;
  }

  post(pattern: string, handler: UwsHttpHandler): this {
    this.router.add("post", pattern, handler);
    return this;
  }

  any(pattern: string, handler: UwsHttpHandler): this {
    this.router.add("any", pattern, handler);
    return this;
  }

  ws<UserData>(pattern: string, behavior: UwsWebSocketBehavior<UserData>): this {
    if (this.wsRoute) throw new Error("the Bun adapter serves one WebSocket route per app");
    const matcher = new BunRouter();
    matcher.add("get", pattern, () => undefined);
    this.wsRoute = { pattern: matcher, behavior: behavior as UwsWebSocketBehavior<unknown> };
    return this;
  }

  listen(host: string, port: number, cb: (listenSocket: UwsListenSocket | false) => void): this {
    let server: BunServer;
    try {
      server = this.serve(host, port);
    } catch {
      cb(false);
      return this;
    }
    this.server = server;
    cb({ server } satisfies BunListenSocket);
    return this;
  }

  close(): this {
    void this.server?.stop(true);
    this.server = undefined;
    return this;
  }

  publish(topic: string, message: string): boolean {
    return (this.server?.publish(topic, message) ?? 0) !== 0;
  }

  numSubscribers(topic: string): number {
    return this.server?.subscriberCount(topic) ?? 0;
  }

  private serve(host: string, port: number): BunServer {
    const behavior = this.wsRoute?.behavior ?? {};
    return bunRuntime().serve<SocketData>({
      hostname: host,
      port,
      fetch: (request, server) => this.fetch(request, server),
      websocket: {
        // Settings mean what they mean to uWS (Bun passes them to its uWS).
        maxPayloadLength: behavior.maxPayloadLength ?? 16 * 1024,
        backpressureLimit: behavior.maxBackpressure ?? 64 * 1024,
        closeOnBackpressureLimit: behavior.closeOnBackpressureLimit ?? false,
        idleTimeout: behavior.idleTimeout ?? 120,
        sendPings: behavior.sendPingsAutomatically ?? true,
        perMessageDeflate: false,
        open: (ws) => {
          const socket = new BunUwsWebSocket(ws);
          ws.data.socket = socket;
          behavior.open?.(socket);
        },
        // uWS hands text frames over as their UTF-8 bytes; Bun has already decoded them.
        message: (ws, message) => {
          if (!ws.data.socket) return;
          if (typeof message === "string") behavior.message?.(ws.data.socket, encoder.encode(message).buffer as ArrayBuffer, false);
          else behavior.message?.(ws.data.socket, copy(message), true);
        },
        ping: (ws, data) => {
          if (ws.data.socket) behavior.ping?.(ws.data.socket, copy(data));
        },
        close: (ws, code, reason) => {
          if (ws.data.socket) behavior.close?.(ws.data.socket, code, encoder.encode(reason).buffer as ArrayBuffer);
        },
      },
    });
  }

  private fetch(request: Request, server: BunServer): Response | Promise<Response | undefined> {
    const req = new BunHttpRequest(request);
    const res = new BunHttpResponse(req, server);
    const method = req.getMethod();
    // As uWS: a GET on the WebSocket route without an upgrade falls through to the other routes.
    if (this.wsRoute && method === "get" && req.getHeader("upgrade").toLowerCase() === "websocket" && this.wsRoute.pattern.match(method, req.path)) {
      const { upgrade } = this.wsRoute.behavior;
      if (upgrade) upgrade(res, req, UPGRADE_CONTEXT);
      else res.upgrade({}, "", "", "", UPGRADE_CONTEXT);
      return res.result;
    }
    const route = this.router.match(method, req.path);
    if (!route) return new Response("", { status: 404 });
    route.handler(res, req.withParams(route.params));
    return res.result;
  }
}

/** uWS's WebSocket over Bun's. Send results are mapped to uWS's: 1 sent, 0 buffered, 2 dropped. */
class BunUwsWebSocket<UserData> implements UwsWebSocket<UserData> {
  constructor(private readonly ws: BunServerWebSocket<SocketData>) {}

  send(message: string): number {
    const sent = this.ws.send(message);
    return sent > 0 ? 1 : sent === -1 ? 0 : 2;
  }

  cork(cb: () => void): this {
    this.ws.cork(cb);
    return this;
  }

  end(code?: number, shortMessage?: string): void {
    this.ws.close(code, shortMessage);
  }

  subscribe(topic: string): boolean {
    this.ws.subscribe(topic);
    return true;
  }

  unsubscribe(topic: string): boolean {
    this.ws.unsubscribe(topic);
    return true;
  }

  /** Bun's `publish` on a socket skips that socket, as uWS's does. */
  publish(topic: string, message: string): boolean {
    return this.ws.publish(topic, message) !== 0;
  }

  getBufferedAmount(): number {
    return this.ws.getBufferedAmount();
  }

  getUserData(): UserData {
    return this.ws.data.userData as UserData;
  }
}

function copy(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
