import type { UwsApi, UwsApp, UwsListenSocket, UwsRequest, UwsResponse, UwsUpgradeContext } from "../../core/ports/uws-api.js";
import { HttpRejection } from "@sobranie/protocol/codes";
import type { AdmissionTicket } from "../../core/connections.js";
import type { Gateway } from "../../core/gateway.js";
import type { Session } from "../../core/session.js";
import { AuthenticationError, type Authenticator, type Principal } from "../../core/ports/authenticator.js";
import type { EventStore } from "../../core/ports/event-store.js";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import { registerInboxRoutes } from "./inbox-routes.js";
import { registerPublishRoutes } from "./publish-routes.js";
import { registerControlRoutes } from "./control-routes.js";
import { registerPresenceRoutes } from "./presence-routes.js";
import type { NamespaceRegistry } from "../../core/namespaces.js";
import type { ApiKeys } from "./api-keys.js";
import type { HttpLimits } from "./http-limits.js";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { Metrics, UpgradeRejectReason } from "../../core/ports/metrics.js";
import { ADMISSION_REJECTIONS, PendingReply, requestToken } from "./http-reply.js";
import { registerSseRoutes } from "./sse-routes.js";
import type { SseTopics } from "./sse-session-socket.js";
import { registerClientRoutes } from "./client-routes.js";
import type { CorkedSends } from "./corked-sends.js";
import { UwsSessionSocket } from "./uws-session-socket.js";
import { withFramingCheck } from "./request-framing.js";
import { registerHttpRoutes } from "./http-routes.js";
import type { HttpRoute } from "../../core/ports/http-route.js";

export interface Readiness {
  ready: boolean;
  checks: Record<string, boolean>;
}

export interface MetricsExposition {
  readonly contentType: string;
  render(): Promise<string>;
}

export interface UwsServerDeps {
  readonly uws: UwsApi;
  readonly app: UwsApp;
  readonly exposition: MetricsExposition;
  readonly readiness: () => Readiness;
  readonly logger: Logger;
  /** The client edge (WebSocket, inbox API); absent on a worker-only node, which serves only health and metrics. */
  readonly edge: EdgeDeps | undefined;
}

export interface EdgeDeps {
  readonly gateway: Gateway;
  readonly apiKeys: ApiKeys;
  /** Rates of the HTTP API and SSE connects by address, user and failed API key. */
  readonly httpLimits: HttpLimits;
  readonly clock: Clock;
  readonly authenticator: Authenticator;
  readonly metrics: Metrics;
  readonly namespaces: NamespaceRegistry;
  readonly store: EventStore | undefined;
  readonly maxFrameBytes: number;
  readonly sendBufferBytes: number;
  /** SSE streams by channel; the same registry the gateway's LocalFanout writes to. */
  readonly sseTopics: SseTopics;
  /** Where WebSocket frames wait for the end of the turn; the same one the gateway's LocalFanout flushes. */
  readonly wsSends: CorkedSends;
  readonly maxSubscriptions: number;
  /** SSE comment interval (default 15 s). */
  readonly sseKeepAliveMs?: number;
  /** Runtime-neutral routes beside the built-in ones (the Pusher REST API and auth endpoints). */
  readonly routes?: readonly HttpRoute[];
}

interface SocketData {
  ticket: AdmissionTicket;
  session: Session | undefined;
  socket: UwsSessionSocket<SocketData> | undefined;
}

const UPGRADE_REJECTIONS = ADMISSION_REJECTIONS;

/**
 * HTTP and WebSocket edge on uWebSockets.js. The token is checked before the
 * upgrade, so an unauthorized client never holds a WebSocket.
 *
 * uWS settings, and why:
 * - maxPayloadLength is twice the contract's frame limit: uWS drops a frame
 *   over its own cap with 1006 and no close frame, so the cap sits above the
 *   limit and the session answers `too_large` + 1009 itself.
 * - idleTimeout 0: uWS would close silent sockets with 1006; the session owns
 *   the heartbeat TTL and closes with 4008.
 * - maxBackpressure 0 (no uWS limit) and no closeOnBackpressureLimit: over its
 *   limit uWS silently skips a socket in `publish`, drops even the close frame,
 *   and closes with 1006. Instead the gateway's periodic inspection closes a
 *   socket over SEND_BUFFER_BYTES with 4013 (its close frame queued behind the
 *   buffered events), so a slow socket holds at most the limit plus one
 *   inspection interval of traffic, and it never misses an event silently.
 */
export class UwsServer {
  private listenSocket: UwsListenSocket | undefined;
  private readonly deps: UwsServerDeps;

  constructor(deps: UwsServerDeps) {
    this.deps = deps;
    const app = withFramingCheck(deps.app);
    if (deps.edge) this.registerEdge(app, deps.edge);
    app.get("/healthz", (res) => new PendingReply(res).json(200, { status: "ok" }));
    app.get("/readyz", (res) => {
      const readiness = deps.readiness();
      new PendingReply(res).json(readiness.ready ? 200 : 503, readiness);
    });
    app.get("/metrics", (res) => this.metrics(res));
    app.any("/*", (res) => new PendingReply(res).reject(HttpRejection.NotFound, "no such endpoint"));
  }

  private registerEdge(app: UwsApp, edge: EdgeDeps): void {
    const { uws, logger } = this.deps;
    const deps = edge;
    const limits = edge.httpLimits;
    registerInboxRoutes({ app, authenticator: edge.authenticator, limits, store: edge.store, gateway: edge.gateway, logger });
    registerPublishRoutes({ app, apiKeys: edge.apiKeys, limits, gateway: edge.gateway, clock: edge.clock, logger });
    registerControlRoutes({ app, apiKeys: edge.apiKeys, limits, gateway: edge.gateway, clock: edge.clock, logger });
    registerPresenceRoutes({ app, apiKeys: edge.apiKeys, limits, authenticator: edge.authenticator, namespaces: edge.namespaces, gateway: edge.gateway, clock: edge.clock });
    registerClientRoutes({ app, logger });
    registerHttpRoutes({ app, limits, logger }, edge.routes ?? []);
    registerSseRoutes({
      app,
      gateway: edge.gateway,
      authenticator: edge.authenticator,
      limits,
      metrics: edge.metrics,
      clock: edge.clock,
      topics: edge.sseTopics,
      maxSubscriptions: edge.maxSubscriptions,
      ...(edge.sseKeepAliveMs === undefined ? {} : { keepAliveMs: edge.sseKeepAliveMs }),
    });
    app.ws<SocketData>("/realtime/ws", {
      compression: uws.DISABLED,
      maxPayloadLength: deps.maxFrameBytes * 2,
      idleTimeout: 0,
      maxBackpressure: 0,
      closeOnBackpressureLimit: false,
      sendPingsAutomatically: false,
      upgrade: (res, req, context) => this.upgrade(edge, res, req, context),
      open: (ws) => {
        const data = ws.getUserData();
        data.socket = new UwsSessionSocket(ws, deps.wsSends);
        data.session = deps.gateway.open(data.ticket, data.socket);
        deps.metrics.connectionOpened("ws");
      },
      message: (ws, message, isBinary) => {
        const session = ws.getUserData().session;
        if (!session) return;
        // Decoded synchronously: uWS reuses `message` once this handler returns.
        if (isBinary) session.receiveBinary(message.byteLength);
        else session.receiveText(Buffer.from(message).toString("utf8"), message.byteLength);
      },
      ping: (ws) => ws.getUserData().session?.heard(),
      close: (ws, code) => {
        const data = ws.getUserData();
        data.socket?.markClosed();
        if (data.session) deps.gateway.closed(data.session);
        deps.metrics.connectionClosed("ws", code);
      },
    });
  }

  /** Listens; resolves with the bound port (useful with port 0). */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.deps.app.listen(host, port, (socket) => {
        if (!socket) return reject(new Error(`could not listen on ${host}:${port}`));
        this.listenSocket = socket;
        resolve(this.deps.uws.us_socket_local_port(socket));
      });
    });
  }

  /** Stops accepting connections; open sockets are left to the gateway's drain. Idempotent. */
  stopListening(): void {
    if (this.listenSocket) this.deps.uws.us_listen_socket_close(this.listenSocket);
    this.listenSocket = undefined;
  }

  /** Closes everything still open (after the drain). */
  close(): void {
    this.stopListening();
    this.deps.app.close();
  }

  private upgrade(edge: EdgeDeps, res: UwsResponse, req: UwsRequest, context: UwsUpgradeContext): void {
    // Everything needed from `req` is read now: it is invalid after the first await.
    const token = requestToken(req);
    const key = req.getHeader("sec-websocket-key");
    const protocol = req.getHeader("sec-websocket-protocol");
    const extensions = req.getHeader("sec-websocket-extensions");
    const reply = new PendingReply(res);
    const { gateway, authenticator, metrics } = edge;
    const refuse = (reason: UpgradeRejectReason, message?: string): void => {
      metrics.upgradeRejected(reason);
      const { rejection, message: fallback } = UPGRADE_REJECTIONS[reason];
      reply.reject(rejection, message ?? fallback);
    };
    if (gateway.isDraining()) return refuse("draining");
    if (!token) return refuse("unauthorized", "missing token: Authorization: Bearer <jwt> or ?token=<jwt>");
    const upgrade = (principal: Principal, upgradeNow: boolean): void => {
      const admission = gateway.admit(principal);
      if (!admission.ok) return refuse(admission.reason);
      const data: SocketData = { ticket: admission.ticket, session: undefined, socket: undefined };
      // In the handler's own turn uWS is already corked; after an await it must be corked here.
      if (upgradeNow) res.upgrade(data, key, protocol, extensions, context);
      else reply.corked((response) => response.upgrade(data, key, protocol, extensions, context));
    };
    const unauthorized = (error: unknown): void =>
      refuse("unauthorized", error instanceof AuthenticationError ? error.message : "token could not be verified");
    // Upgrade in this turn whenever the token can be decided now (HS256, or a PEM key's RS256/ES256):
    // uWS.js 20.30 occasionally closes a socket upgraded after an await with
    // 1006 right after `open` (see JwtAuthenticator.verifyNow).
    let decided: Principal | undefined;
    try {
      decided = authenticator.verifyNow?.(token);
    } catch (error) {
      return unauthorized(error);
    }
    if (decided) return upgrade(decided, true);
    authenticator.verify(token).then((principal) => {
      if (reply.isOpen) upgrade(principal, false);
    }, unauthorized);
  }

  private metrics(res: UwsResponse): void {
    const reply = new PendingReply(res);
    reply.holdConnection();
    this.deps.exposition.render().then(
      (text) => reply.text(200, this.deps.exposition.contentType, text),
      (error: unknown) => {
        this.deps.logger.error({ err: error }, "metrics rendering failed");
        reply.json(500, { error: { code: "internal", message: "metrics unavailable" } });
      },
    );
  }
}
