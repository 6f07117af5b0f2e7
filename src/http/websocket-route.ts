import type { UpgradeExchange, WebSocketRoute } from "../core/ports/edge.js";
import type { AdmissionTicket } from "../core/connections.js";
import type { Gateway } from "../core/gateway.js";
import type { Session } from "../core/session.js";
import type { Metrics } from "../core/ports/metrics.js";
import type { CorkedSends } from "./corked-sends.js";
import { PendingReply, refuseConnection, requestToken } from "./http-reply.js";
import { admitUser, refuseUser, type UserTokenGateDeps } from "./user-token-gate.js";
import { WebSocketSessionSocket } from "./websocket-session-socket.js";

export interface RealtimeWebSocketDeps extends UserTokenGateDeps {
  readonly gateway: Gateway;
  readonly metrics: Metrics;
  readonly maxFrameBytes: number;
  /** Where frames wait for the end of the turn; the same one the gateway's LocalFanout flushes. */
  readonly wsSends: CorkedSends;
}

export interface RealtimeSocketData {
  readonly ticket: AdmissionTicket;
  session: Session | undefined;
  socket: WebSocketSessionSocket<RealtimeSocketData> | undefined;
}

/**
 * `/realtime/ws` (docs/protocol.md §2): the token is checked before the
 * upgrade, so an unauthorized client never holds a WebSocket. The upgrade
 * happens in the request's own turn whenever the token can be decided now
 * (HS256, or a PEM key's RS256/ES256): uWS.js 20.30 occasionally closes a
 * socket upgraded after an await with 1006 right after `open`.
 *
 * The runtime's frame cap is twice the protocol's frame limit: a runtime
 * drops a frame over its cap with 1006 and no close frame, so the cap sits
 * above the limit and the session answers `too_large` + 1009 itself.
 */
export function realtimeWebSocket(deps: RealtimeWebSocketDeps): WebSocketRoute<RealtimeSocketData> {
  return {
    maxPayloadBytes: deps.maxFrameBytes * 2,
    upgrade: (exchange) => upgrade(deps, exchange),
    open: (ws) => {
      ws.data.socket = new WebSocketSessionSocket(ws, deps.wsSends);
      ws.data.session = deps.gateway.open(ws.data.ticket, ws.data.socket);
      deps.metrics.connectionOpened("ws");
    },
    text: (ws, text, bytes) => ws.data.session?.receiveText(text, bytes),
    binary: (ws, bytes) => ws.data.session?.receiveBinary(bytes),
    ping: (ws) => ws.data.session?.heard(),
    // Never pinged by the server; a pong sent unasked is a heartbeat like a ping.
    pong: (ws) => ws.data.session?.heard(),
    close: (ws, code) => {
      ws.data.socket?.markClosed();
      if (ws.data.session) deps.gateway.closed(ws.data.session);
      deps.metrics.connectionClosed("ws", code);
    },
  };
}

function upgrade(deps: RealtimeWebSocketDeps, exchange: UpgradeExchange<RealtimeSocketData>): void {
  const reply = new PendingReply(exchange);
  const { gateway, metrics } = deps;
  if (gateway.isDraining()) return refuseConnection(reply, metrics, "draining");
  // The core's connection rates apply at admission; the HTTP rates do not.
  const token = requestToken(exchange.request);
  admitUser(deps, token, { missingToken: "missing token: Authorization: Bearer <jwt> or ?token=<jwt>", httpRatesFrom: undefined }, (verdict) => {
    if (!verdict.ok) return refuseUser(reply, verdict, metrics);
    if (!exchange.isOpen) return;
    const admission = gateway.admit(verdict.principal);
    if (!admission.ok) return refuseConnection(reply, metrics, admission.reason);
    exchange.accept({ ticket: admission.ticket, session: undefined, socket: undefined });
  });
}
