import type { UwsApp, UwsResponse } from "../../core/ports/uws-api.js";
import { CloseCode, HttpRejection } from "@sobranie/protocol/codes";
import { parseChannel } from "@sobranie/protocol/channel";
import { SSE_PREAMBLE, parseLastEventId } from "@sobranie/protocol/sse";
import type { Gateway } from "../../core/gateway.js";
import type { Session } from "../../core/session.js";
import { AuthenticationError, type Authenticator } from "../../core/ports/authenticator.js";
import type { Clock, Timer } from "@sobranie/protocol/runtime/clock";
import type { Metrics, UpgradeRejectReason } from "../../core/ports/metrics.js";
import { ADMISSION_REJECTIONS, PendingReply, requestToken } from "./http-reply.js";
import type { HttpLimits } from "./http-limits.js";
import { SseSessionSocket, type SseTopics } from "./sse-session-socket.js";

/** docs/protocol.md §6: a comment line at least this often. */
export const SSE_KEEPALIVE_MS = 15_000;

export interface SseRoutesDeps {
  readonly app: UwsApp;
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

  deps.app.get("/realtime/events", (res, req) => {
    // Everything needed from `req` is read now: it is invalid after the first await.
    const token = requestToken(req);
    const channelsParam = req.getQuery("channels") ?? "";
    const lastEventId = req.getHeader("last-event-id") || req.getQuery("lastEventId") || undefined;
    const source = deps.limits.sourceOf(res, req);
    const reply = new PendingReply(res);
    const refuse = (reason: UpgradeRejectReason, message?: string): void => {
      deps.metrics.upgradeRejected(reason);
      const { rejection, message: fallback } = ADMISSION_REJECTIONS[reason];
      reply.reject(rejection, message ?? fallback);
    };

    const channels = parseChannelList(channelsParam, deps.maxSubscriptions);
    if (!channels.ok) return reply.reject(HttpRejection.BadRequest, channels.message);
    if (deps.gateway.isDraining()) return refuse("draining");
    if (!token) return refuse("unauthorized", "missing token: Authorization: Bearer <jwt> or ?token=<jwt>");
    const since = parseLastEventId(lastEventId);
    const bySource = deps.limits.takeSource(source);
    if (!bySource.ok) return reply.rateLimited("too many requests from this address", bySource.retryAfterMs);

    deps.authenticator.verify(token).then(
      (principal) => {
        if (!reply.isOpen) return;
        const byUser = deps.limits.takeUser(principal.userId);
        if (!byUser.ok) return reply.rateLimited("too many requests for this user", byUser.retryAfterMs);
        const admission = deps.gateway.admit(principal);
        if (!admission.ok) return refuse(admission.reason);
        let session: Session | undefined;
        const socket = new SseSessionSocket({
          res,
          topics: deps.topics,
          pendingRefs: channels.names.map((_, index) => index + 1),
          onClosed: (code) => {
            untrack(socket);
            if (session) deps.gateway.closed(session);
            deps.metrics.connectionClosed("sse", code);
          },
        });
        reply.onAbort(() => socket.aborted(CloseCode.Normal));
        reply.corked((response) => startStream(response));
        session = deps.gateway.open(admission.ticket, socket);
        deps.metrics.connectionOpened("sse");
        track(socket, session);
        channels.names.forEach((channel, index) => {
          session?.request(since === undefined ? { op: "subscribe", ref: index + 1, channel } : { op: "subscribe", ref: index + 1, channel, since });
        });
      },
      (error: unknown) => {
        refuse("unauthorized", error instanceof AuthenticationError ? error.message : "token could not be verified");
      },
    );
  });
}

function startStream(res: UwsResponse): void {
  res
    .writeStatus("200 OK")
    .writeHeader("content-type", "text/event-stream; charset=utf-8")
    .writeHeader("cache-control", "no-store")
    // nginx and similar proxies would otherwise buffer the stream.
    .writeHeader("x-accel-buffering", "no")
    .write(SSE_PREAMBLE);
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
