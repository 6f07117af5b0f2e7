import type { EdgeServer, HttpExchange } from "../core/ports/edge.js";
import { HttpRejection } from "@sobranie/protocol/codes";
import type { Gateway } from "../core/gateway.js";
import type { Authenticator } from "../core/ports/authenticator.js";
import type { EventStore } from "../core/ports/event-store.js";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { Metrics } from "../core/ports/metrics.js";
import type { NamespaceRegistry } from "../core/namespaces.js";
import { registerInboxRoutes } from "./inbox-routes.js";
import { registerPublishRoutes } from "./publish-routes.js";
import { registerControlRoutes } from "./control-routes.js";
import { registerPresenceRoutes } from "./presence-routes.js";
import { registerSseRoutes } from "./sse-routes.js";
import { registerClientRoutes } from "./client-routes.js";
import { registerJsonRoutes } from "./json-routes.js";
import type { HttpRoute } from "../core/ports/http-route.js";
import type { ApiKeys } from "./api-keys.js";
import type { HttpLimits } from "./http-limits.js";
import { PendingReply } from "./http-reply.js";
import type { SseTopics } from "./sse-session-socket.js";
import type { CorkedSends } from "./corked-sends.js";
import { withFramingCheck } from "./request-framing.js";
import { realtimeWebSocket } from "./websocket-route.js";

export interface Readiness {
  ready: boolean;
  checks: Record<string, boolean>;
}

export interface MetricsExposition {
  readonly contentType: string;
  render(): Promise<string>;
}

export interface EdgeRoutesDeps {
  readonly exposition: MetricsExposition;
  readonly readiness: () => Readiness;
  readonly logger: Logger;
  /** The client edge (WebSocket, SSE, HTTP API); absent on a worker-only node, which serves only health and metrics. */
  readonly edge: ClientEdgeDeps | undefined;
}

export interface ClientEdgeDeps {
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
  /** SSE streams by channel; the same registry the gateway's LocalFanout writes to. */
  readonly sseTopics: SseTopics;
  /** Where WebSocket frames wait for the end of the turn; the same one the gateway's LocalFanout flushes. */
  readonly wsSends: CorkedSends;
  readonly maxSubscriptions: number;
  /** SSE comment interval (default 15 s). */
  readonly sseKeepAliveMs?: number;
  /** Runtime-neutral JSON routes beside the built-in ones (the Pusher REST API and auth endpoints). */
  readonly routes?: readonly HttpRoute[];
}

/**
 * Every route of the node on `server`, behind the framing check: health,
 * readiness and metrics always; the WebSocket endpoint, SSE and the HTTP
 * API on a node with a gateway; 404 `not_found` for anything else.
 */
export function registerEdgeRoutes(edgeServer: EdgeServer, deps: EdgeRoutesDeps): void {
  const server = withFramingCheck(edgeServer);
  if (deps.edge) registerClientEdge(server, deps.logger, deps.edge);
  server.route("get", "/healthz", (exchange) => new PendingReply(exchange).json(200, { status: "ok" }));
  server.route("get", "/readyz", (exchange) => {
    const readiness = deps.readiness();
    new PendingReply(exchange).json(readiness.ready ? 200 : 503, readiness);
  });
  server.route("get", "/metrics", (exchange) => metrics(deps, exchange));
  server.fallback((exchange) => new PendingReply(exchange).reject(HttpRejection.NotFound, "no such endpoint"));
}

function registerClientEdge(server: EdgeServer, logger: Logger, edge: ClientEdgeDeps): void {
  const limits = edge.httpLimits;
  registerInboxRoutes({ server, authenticator: edge.authenticator, limits, store: edge.store, gateway: edge.gateway, logger });
  registerPublishRoutes({ server, apiKeys: edge.apiKeys, limits, gateway: edge.gateway, clock: edge.clock, logger });
  registerControlRoutes({ server, apiKeys: edge.apiKeys, limits, gateway: edge.gateway, clock: edge.clock, logger });
  registerPresenceRoutes({ server, apiKeys: edge.apiKeys, limits, authenticator: edge.authenticator, namespaces: edge.namespaces, gateway: edge.gateway, clock: edge.clock });
  registerClientRoutes({ server, logger });
  registerJsonRoutes(server, edge.routes ?? [], limits, logger);
  registerSseRoutes({
    server,
    gateway: edge.gateway,
    authenticator: edge.authenticator,
    limits,
    metrics: edge.metrics,
    clock: edge.clock,
    topics: edge.sseTopics,
    maxSubscriptions: edge.maxSubscriptions,
    ...(edge.sseKeepAliveMs === undefined ? {} : { keepAliveMs: edge.sseKeepAliveMs }),
  });
  server.webSocket(
    "/realtime/ws",
    realtimeWebSocket({ gateway: edge.gateway, authenticator: edge.authenticator, limits, metrics: edge.metrics, maxFrameBytes: edge.maxFrameBytes, wsSends: edge.wsSends }),
  );
}

function metrics(deps: EdgeRoutesDeps, exchange: HttpExchange): void {
  const reply = new PendingReply(exchange);
  reply.holdConnection();
  deps.exposition.render().then(
    (text) => reply.text(200, deps.exposition.contentType, text),
    (error: unknown) => {
      deps.logger.error({ err: error }, "metrics rendering failed");
      reply.json(500, { error: { code: "internal", message: "metrics unavailable" } });
    },
  );
}
