import type { EdgeServer, HttpExchange, ResponseStream } from "../core/ports/edge.js";
import { CloseCode, HttpRejection } from "@sobranie/protocol/codes";
import { parseChannel } from "@sobranie/protocol/channel";
import { SSE_PREAMBLE, parseLastEventId } from "@sobranie/protocol/sse";
import type { Gateway } from "../core/gateway.js";
import type { Session } from "../core/session.js";
import type { Authenticator } from "../core/ports/authenticator.js";
import type { Clock, Timer } from "@sobranie/protocol/runtime/clock";
import type { Metrics } from "../core/ports/metrics.js";
import { PendingReply, refuseConnection, requestToken } from "./http-reply.js";
import { admitUser, refuseUser } from "./user-token-gate.js";
import type { HttpLimits } from "./http-limits.js";
import { SseSessionSocket, type SseTopics } from "./sse-session-socket.js";

/** docs/protocol.md §6: a comment line at least this often. */
export const SSE_KEEPALIVE_MS = 15_000;

export interface SseRoutesDeps {
  readonly server: EdgeServer;
  readonly gateway: Gateway;
  readonly authenticator: Authenticator;
  readonly limits: HttpLimits;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly topics: SseTopics;
  readonly maxSubscriptions: number;
  /** Comment interval; defaults to 15 s. Each comment written also counts as the stream's heartbeat. */
  readonly keepAliveMs?: number;
}

/**
 * `GET /realtime/events?channels=a,b` (docs/protocol.md §6): an SSE stream that is a
 * Session like any WebSocket, so admission, authorization per channel,
 * recovery, token expiry and the send-buffer cut-off are the core's own.
 *
 * The stream subscribes to each channel as a `subscribe` frame would (its
 * `ok` or `error` arrives as a `sobranie.ok`/`sobranie.error` message with
 * `ref` = the channel's position, from 1), with `since` = `Last-Event-ID` (the
 * header, or `?lastEventId=` for clients that cannot set headers) on every
 * durable channel. A client cannot send frames on SSE: the stream being
 * writable is its heartbeat, renewed by each keep-alive comment.
 *
 * Refusals before the stream starts are JSON like the WebSocket upgrade's:
 * 400 (no or bad `channels`), 401, 429, 503. A connect is an HTTP request
 * that may replay stored events, so it counts against the address's and the
 * user's HTTP rates (429 `rate_limited` with Retry-After), on top of the
 * per-user connection limit (429 `limit_exceeded`).
 */
export function registerSseRoutes(deps: SseRoutesDeps): void {
  const streams = new Map<SseSessionSocket, Session>();
  const keepAliveMs = deps.keepAliveMs ?? SSE_KEEPALIVE_MS;
  let keepAlive: Timer | undefined;

  const track = (socket: SseSessionSocket, session: Session): void => {
    streams.set(socket, session);
    keepAlive ??= deps.clock.setInterval(() => {
      for (const [stream, streamSession] of streams) if (stream.keepAlive()) streamSession.heard();
    }, keepAliveMs);
  };
  const untrack = (socket: SseSessionSocket): void => {
    streams.delete(socket);
    if (streams.size > 0) return;
    keepAlive?.cancel();
    keepAlive = undefined;
  };

  deps.server.route("get", "/realtime/events", (exchange) => {
    // Everything needed from the request is read now: it is invalid after the first await.
    const req = exchange.request;
    const token = requestToken(req);
    const source = deps.limits.sourceOf(req);
    const channelsParam = req.query("channels") ?? "";
    const lastEventId = req.header("last-event-id") || req.query("lastEventId") || undefined;
    const reply = new PendingReply(exchange);

    const channels = parseChannelList(channelsParam, deps.maxSubscriptions);
    if (!channels.ok) return reply.reject(HttpRejection.BadRequest, channels.message);
    if (deps.gateway.isDraining()) return refuseConnection(reply, deps.metrics, "draining");
    const since = parseLastEventId(lastEventId);
    admitUser(deps, token, { missingToken: "missing token: Authorization: Bearer <jwt> or ?token=<jwt>", httpRatesFrom: source }, (verdict) => {
      if (!verdict.ok) return refuseUser(reply, verdict, deps.metrics);
      if (!reply.isOpen) return;
      const admission = deps.gateway.admit(verdict.principal);
      if (!admission.ok) return refuseConnection(reply, deps.metrics, admission.reason);
      // Open: checked above, in this turn.
      const stream = startStream(exchange)!;
      let session: Session | undefined;
      const socket = new SseSessionSocket({
        stream,
        topics: deps.topics,
        pendingRefs: channels.names.map((_, index) => index + 1),
        onClosed: (code) => {
          untrack(socket);
          if (session) deps.gateway.closed(session);
          deps.metrics.connectionClosed("sse", code);
        },
      });
      reply.onAbort(() => socket.aborted(CloseCode.Normal));
      session = deps.gateway.open(admission.ticket, socket);
      deps.metrics.connectionOpened("sse");
      track(socket, session);
      channels.names.forEach((channel, index) => {
        session?.request(since === undefined ? { op: "subscribe", ref: index + 1, channel } : { op: "subscribe", ref: index + 1, channel, since });
      });
    });
  });
}

function startStream(exchange: HttpExchange): ResponseStream | undefined {
  const stream = exchange.stream(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    // nginx and similar proxies would otherwise buffer the stream.
    "x-accel-buffering": "no",
  });
  stream?.write(SSE_PREAMBLE);
  return stream;
}

type ChannelList = { ok: true; names: string[] } | { ok: false; message: string };

/** `a,b` → distinct channel names, each valid by the channel grammar; authorization is the session's. */
export function parseChannelList(param: string, max: number): ChannelList {
  const names = [...new Set(param.split(",").map((name) => name.trim()).filter((name) => name !== ""))];
  if (names.length === 0) return { ok: false, message: "channels is required: ?channels=namespace:id,namespace:id" };
  if (names.length > max) return { ok: false, message: `at most ${max} channels per stream` };
  const bad = names.find((name) => !parseChannel(name));
  if (bad !== undefined) return { ok: false, message: `"${bad.slice(0, 64)}" is not a channel: namespace:id` };
  return { ok: true, names };
}
