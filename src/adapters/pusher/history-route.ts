import { HttpRejection } from "@sobranie/protocol/codes";
import type { EventStore, StoredEvent } from "../../core/ports/event-store.js";
import { httpRateLimited, httpRefusal, type HttpRoute, type HttpRouteAnswer, type HttpRouteRequest } from "../../core/ports/http-route.js";
import type { PusherApp } from "./apps.js";
import { appOf, type PusherAuthDeps } from "./auth-routes.js";
import { isPusherChannelRefusal, type PusherChannel } from "./channel-names.js";
import { SOCKET_ID_PATTERN } from "./rest-events.js";
import { bearerUser } from "./bearer-user.js";
import { dataWithSeq } from "./seq-data.js";
import { channelAuthString, verifyAuthToken } from "./signatures.js";
import { pusherEvent, type PusherEvent } from "./socket-frames.js";

const HISTORY_PATH = "/pusher/history";
/** Most events one answer holds (and the default page): a client further behind pages on with `more`. */
const HISTORY_MAX_LIMIT = 100;

/** What hosted auth needs (the app, the bearer user and what they may subscribe), and the store. */
export interface PusherHistoryDeps extends PusherAuthDeps {
  /** Undefined on a gateway-only node without DATABASE_URL: the route answers 503. */
  readonly store: EventStore | undefined;
}

export interface PusherHistoryAnswer {
  /** Oldest first, each as the channel's Pusher subscribers got it (its seq inside `data`). */
  readonly events: readonly PusherEvent[];
  /** More events follow the last one: ask again with its seq as `after_seq`. */
  readonly more: boolean;
  /** False when retention removed events of the channel after `after_seq`: they are gone for good. */
  readonly complete: boolean;
}

/**
 * `GET /pusher/history?channel=<Pusher name>&after_seq=<n>[&limit=<n>][&key=<app key>]`
 * (docs/pusher.md, "Recovery"): a channel's stored events after a seq, for
 * a browser on a stock Pusher SDK that saw a gap in the seqs inside `data`.
 * It holds no app secret, so it proves its right with what it has:
 * - our JWT as `Authorization: Bearer`, judged by the namespace's subscribe
 *   rule as a native subscribe is;
 * - or the subscription's own proof, `socket_id` and `auth` (and
 *   `channel_data` on presence channels), the app's signature that let the
 *   socket subscribe;
 * - or nothing, on public channels.
 * Only channels of durable namespaces with `pusherSeq` are served.
 */
export function pusherHistoryRoute(deps: PusherHistoryDeps): HttpRoute {
  return {
    method: "GET",
    pattern: HISTORY_PATH,
    maxBodyBytes: 0,
    headers: ["authorization"],
    unavailable: "the event store is not reachable, retry shortly",
    handle: (request) => history(deps, request),
  };
}

async function history(deps: PusherHistoryDeps, request: HttpRouteRequest): Promise<HttpRouteAnswer> {
  const query = new URLSearchParams(request.query);
  const app = appOf(deps.apps, query.get("key"));
  if (!app.ok) return app.answer;
  if (!app.value.enabled) return httpRefusal(HttpRejection.Forbidden, `app ${app.value.id} is disabled`);
  const bySource = deps.limits.takeSource(request.source);
  if (!bySource.ok) return httpRateLimited("too many requests from this address", bySource.retryAfterMs);
  const name = query.get("channel");
  if (name === null) return httpRefusal(HttpRejection.BadRequest, "channel is required: the Pusher channel name");
  const channel = deps.channelNames.parse(name);
  if (isPusherChannelRefusal(channel)) {
    return httpRefusal(channel.reason === "unknown_namespace" ? HttpRejection.NotFound : HttpRejection.BadRequest, channel.message);
  }
  if (!channel.seqInData) {
    return httpRefusal(HttpRejection.BadRequest, `${name}: namespace "${channel.channel.namespace}" keeps no Pusher history (a durable namespace with pusherSeq: true does)`);
  }
  const afterSeq = wholeNumber(query.get("after_seq"));
  if (afterSeq === undefined) return httpRefusal(HttpRejection.BadRequest, "after_seq must be a whole number ≥ 0: the last seq the client has (0 for everything kept)");
  const limitText = query.get("limit");
  const limit = limitText === null ? HISTORY_MAX_LIMIT : wholeNumber(limitText);
  if (limit === undefined || limit < 1 || limit > HISTORY_MAX_LIMIT) return httpRefusal(HttpRejection.BadRequest, `limit must be a whole number from 1 to ${HISTORY_MAX_LIMIT}`);
  const refused = await authorize(deps, app.value, channel, request, query);
  if (refused) return refused;
  if (!deps.store) return httpRefusal(HttpRejection.Unavailable, "this node has no event store (DATABASE_URL): ask a node that has one");
  // One more than asked for tells whether more follow.
  const page = await deps.store.history(channel.channel.name, afterSeq, limit + 1);
  const events = page.events.slice(0, limit).map((event) => asPusherEvent(channel, event));
  const body: PusherHistoryAnswer = { events, more: page.events.length > limit, complete: page.complete };
  return { status: 200, body };
}

/** Undefined when the caller may read the channel; otherwise the refusal. */
async function authorize(deps: PusherHistoryDeps, app: PusherApp, channel: PusherChannel, request: HttpRouteRequest, query: URLSearchParams): Promise<HttpRouteAnswer | undefined> {
  const authorization = request.headers.authorization ?? "";
  if (authorization !== "") {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization)?.[1];
    if (token === undefined) return httpRefusal(HttpRejection.Unauthorized, "Authorization must be Bearer <jwt>");
    return authorizeUser(deps, channel, token);
  }
  if (channel.kind === "public") return undefined;
  const failures = deps.limits.checkApiKeyFailures(request.source);
  if (!failures.ok) return httpRateLimited("too many bad signatures from this address", failures.retryAfterMs);
  const socketId = query.get("socket_id");
  const auth = query.get("auth");
  const channelData = query.get("channel_data") ?? undefined;
  if (socketId === null || !SOCKET_ID_PATTERN.test(socketId)) return httpRefusal(HttpRejection.BadRequest, "socket_id must be a Pusher socket id (digits.digits), or send Authorization: Bearer <jwt>");
  if (auth === null) return httpRefusal(HttpRejection.Unauthorized, `${channel.pusherName} is not public: send auth, the signature that subscribed socket_id, or Authorization: Bearer <jwt>`);
  if (channel.kind === "presence" && channelData === undefined) return httpRefusal(HttpRejection.BadRequest, "channel_data is required on presence channels: the one auth signs");
  const signed = channelAuthString(socketId, channel.pusherName, channel.kind === "presence" ? channelData : undefined);
  if (verifyAuthToken(app, signed, auth)) return undefined;
  deps.limits.apiKeyFailed(request.source);
  return httpRefusal(HttpRejection.Unauthorized, `auth is not app ${app.key}'s signature of "${signed}"`);
}

async function authorizeUser(deps: PusherHistoryDeps, channel: PusherChannel, token: string): Promise<HttpRouteAnswer | undefined> {
  const user = await bearerUser(deps, token);
  if (!user.ok) return user.answer;
  const principal = user.principal;
  const allowed = deps.namespaces.canSubscribe(principal, channel.channel);
  if (!allowed.allowed || deps.gateway.isChannelRevoked(principal, channel.channel.name)) {
    return httpRefusal(HttpRejection.Forbidden, `this token may not read ${channel.channel.name} (${channel.pusherName})`);
  }
  return undefined;
}

/** As pusherChannelWire sends it live: seq inside data; presence channels name the sender. */
function asPusherEvent(channel: PusherChannel, event: StoredEvent): PusherEvent {
  return pusherEvent(channel.pusherName, event.type, dataWithSeq(event.data, event.seq), channel.kind === "presence" ? event.user : undefined);
}

/** Decimal digits only, at most a safe integer; undefined for anything else. */
function wholeNumber(text: string | null): number | undefined {
  if (text === null || !/^\d{1,16}$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}
