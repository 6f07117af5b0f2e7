import { USER_ID_PATTERN, USER_ID_RULE } from "@sobranie/protocol/channel";
import { HttpRejection } from "@sobranie/protocol/codes";
import { DisconnectMode } from "@sobranie/protocol/control";
import { EventTooLargeError } from "../../core/published-envelope.js";
import type { Gateway } from "../../core/gateway.js";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import { httpRateLimited, httpRefusal, type HttpRoute, type HttpRouteAnswer, type HttpRouteRequest } from "../../core/ports/http-route.js";
import { KeyedTokenBuckets } from "../../core/rate-limit.js";
import type { PusherApps } from "./apps.js";
import { isPusherChannelRefusal, type PusherChannel, type PusherChannelNames } from "./channel-names.js";
import type { PusherEdgeLimits } from "./edge-limits.js";
import { infoOf, occupancyOf, occupiedChannels } from "./rest-channels.js";
import { parseBatchBody, parseEventsBody, type EventInfoAttribute, type PusherEventsParse, type PusherPublish } from "./rest-events.js";
import { verifyRestRequest } from "./rest-request.js";

/** The HTTP API's overall body bound (as POST /api/v1/publish); one event's data is bounded tighter (rest-events.ts). */
export const REST_MAX_BODY_BYTES = 65_536;

const TERMINATE_REASON = "connections terminated by the app";

export interface PusherRestDeps {
  readonly apps: PusherApps;
  readonly gateway: Gateway;
  readonly channelNames: PusherChannelNames;
  readonly clock: Clock;
  readonly limits: PusherEdgeLimits;
  /** Each app's own request rate: API_RATE_PER_SEC and API_RATE_BURST, as each API key has. */
  readonly rate: { readonly perSec: number; readonly burst: number };
}

interface Signed {
  readonly params: ReadonlyMap<string, string>;
  readonly request: HttpRouteRequest;
}

/**
 * The Pusher REST API (docs/pusher.md, "REST API"), as runtime-neutral
 * routes. Every request is checked in this order: the app by path id (404),
 * the address's failed signatures (429), the signature (401; counted against
 * the address), the app enabled (403), the app's rate (429); then the route's
 * own input (400, 413). Events go to `sobranie.events` like every backend
 * publish, one envelope per channel, and are answered once the broker
 * confirmed them all.
 */
export function pusherRestRoutes(deps: PusherRestDeps): HttpRoute[] {
  const rates = new KeyedTokenBuckets({ ratePerSec: deps.rate.perSec, burst: deps.rate.burst, maxKeys: Math.max(1, deps.apps.size) });
  const signed = (method: "GET" | "POST", pattern: string, act: (signed: Signed) => Promise<HttpRouteAnswer> | HttpRouteAnswer): HttpRoute => ({
    method,
    pattern,
    maxBodyBytes: REST_MAX_BODY_BYTES,
    headers: [],
    unavailable: "message broker unavailable, retry shortly",
    handle: async (request) => {
      const id = request.parameters[0] ?? "";
      const app = deps.apps.byId(id);
      if (!app) return httpRefusal(HttpRejection.NotFound, `no Pusher app with id ${JSON.stringify(id.slice(0, 64))}`);
      const failures = deps.limits.checkApiKeyFailures(request.source);
      if (!failures.ok) return httpRateLimited("too many badly signed requests from this address", failures.retryAfterMs);
      const verdict = verifyRestRequest(app, { method, path: request.path, query: request.query, body: request.body }, deps.clock.now());
      if (!verdict.ok) {
        if (verdict.badSignature) deps.limits.apiKeyFailed(request.source);
        return httpRefusal(verdict.rejection, verdict.message);
      }
      if (!app.enabled) return httpRefusal(HttpRejection.Forbidden, `app ${app.id} is disabled`);
      const rate = rates.take(app.id, deps.clock.now());
      if (!rate.ok) {
        deps.limits.apiKeyRateRefused();
        return httpRateLimited(`too many requests for app ${app.id}`, rate.retryAfterMs);
      }
      return act({ params: verdict.params, request });
    },
  });
  const names = deps.channelNames;

  return [
    signed("POST", "/apps/:id/events", async ({ request }) => {
      const json = parseJson(request.body);
      if (!json.ok) return json.answer;
      return publish(deps, parseEventsBody(json.value, names), (publishes, info) =>
        info.length === 0 ? {} : { channels: Object.fromEntries(publishes.map((event) => [event.pusherName, infoOf(occupancyOf(deps.gateway, event), info)])) },
      );
    }),
    signed("POST", "/apps/:id/batch_events", async ({ request }) => {
      const json = parseJson(request.body);
      if (!json.ok) return json.answer;
      return publish(deps, parseBatchBody(json.value, names), (publishes, info) =>
        info.length === 0 ? {} : { batch: publishes.map((event) => infoOf(occupancyOf(deps.gateway, event), info)) },
      );
    }),
    signed("GET", "/apps/:id/channels", ({ params }) => {
      const prefix = params.get("filter_by_prefix") ?? "";
      const info = params.get("info") ?? "";
      if (info !== "" && info !== "user_count") return httpRefusal(HttpRejection.BadRequest, "info takes only user_count here");
      if (info === "user_count" && !prefix.startsWith("presence-")) {
        return httpRefusal(HttpRejection.BadRequest, "info=user_count needs filter_by_prefix=presence-: only presence channels have users");
      }
      const channels: Record<string, Record<string, number>> = {};
      for (const [name, channel] of occupiedChannels(deps.gateway, names)) {
        if (!name.startsWith(prefix)) continue;
        channels[name] = info === "" ? {} : infoOf(occupancyOf(deps.gateway, channel), ["user_count"]);
      }
      return { status: 200, body: { channels } };
    }),
    signed("GET", "/apps/:id/channels/:name", ({ params, request }) => {
      const channel = pathChannel(request.parameters[1], names);
      if (!channel.ok) return channel.answer;
      const attributes = (params.get("info") ?? "").split(",").filter((attribute) => attribute !== "");
      const unknown = attributes.find((attribute) => attribute !== "user_count" && attribute !== "subscription_count");
      if (unknown !== undefined) return httpRefusal(HttpRejection.BadRequest, `info takes user_count, subscription_count; not ${JSON.stringify(unknown.slice(0, 64))}`);
      if (attributes.includes("user_count") && channel.value.kind !== "presence") {
        return httpRefusal(HttpRejection.BadRequest, "user_count is only for presence channels");
      }
      const occupancy = occupancyOf(deps.gateway, channel.value);
      return { status: 200, body: { occupied: occupancy.occupied, ...infoOf(occupancy, attributes.filter(isInfoAttribute)) } };
    }),
    signed("GET", "/apps/:id/channels/:name/users", ({ request }) => {
      const channel = pathChannel(request.parameters[1], names);
      if (!channel.ok) return channel.answer;
      if (channel.value.kind !== "presence") return httpRefusal(HttpRejection.BadRequest, `${channel.value.pusherName} is not a presence channel: only presence channels have users`);
      const listing = deps.gateway.presence.members(channel.value.channel.name);
      if (listing.truncated) {
        return httpRefusal(HttpRejection.BadRequest, `${channel.value.pusherName} has ${listing.count} users, more than PRESENCE_MAX_LISTED: the list is not kept, only the count`);
      }
      return { status: 200, body: { users: listing.members.map((member) => ({ id: member.user })) } };
    }),
    signed("POST", "/apps/:id/users/:user/terminate_connections", async ({ request }) => {
      const user = decodeSegment(request.parameters[1] ?? "");
      if (user === undefined || !USER_ID_PATTERN.test(user)) return httpRefusal(HttpRejection.BadRequest, `the user in the path is not a user id: ${USER_ID_RULE}`);
      // The control channel reaches every node (docs/protocol.md §11); `final`: the SDK must not reconnect on its own.
      await deps.gateway.publishControl({ command: "disconnect", user, mode: DisconnectMode.Final, reason: TERMINATE_REASON });
      return { status: 200, body: {} };
    }),
  ];
}

/** Publishes every event, all at once; answered once the broker confirmed each (a retryable failure is answered 503 by the edge). */
async function publish(
  deps: PusherRestDeps,
  parsed: PusherEventsParse,
  answer: (publishes: readonly PusherPublish[], info: readonly EventInfoAttribute[]) => unknown,
): Promise<HttpRouteAnswer> {
  if (!parsed.ok) return httpRefusal(parsed.tooLarge ? HttpRejection.TooLarge : HttpRejection.BadRequest, parsed.message);
  try {
    await Promise.all(
      parsed.publishes.map((event) =>
        deps.gateway.publishBackendEvent({ channel: event.channel, type: event.type, data: event.data, id: undefined, excludeSocket: event.excludeSocket }),
      ),
    );
  } catch (error) {
    if (error instanceof EventTooLargeError) return httpRefusal(HttpRejection.TooLarge, error.message);
    throw error;
  }
  return { status: 200, body: answer(parsed.publishes, parsed.info) };
}

function isInfoAttribute(attribute: string): attribute is EventInfoAttribute {
  return attribute === "user_count" || attribute === "subscription_count";
}

function parseJson(body: Uint8Array): { ok: true; value: unknown } | { ok: false; answer: HttpRouteAnswer } {
  try {
    return { ok: true, value: JSON.parse(Buffer.from(body).toString("utf8")) };
  } catch {
    return { ok: false, answer: httpRefusal(HttpRejection.BadRequest, "body is not valid JSON") };
  }
}

function pathChannel(
  raw: string | undefined,
  names: PusherChannelNames,
): { ok: true; value: PusherChannel } | { ok: false; answer: HttpRouteAnswer } {
  const name = decodeSegment(raw ?? "");
  if (name === undefined) return { ok: false, answer: httpRefusal(HttpRejection.BadRequest, "the channel in the path is not valid percent-encoding") };
  const channel = names.parse(name);
  if (isPusherChannelRefusal(channel)) return { ok: false, answer: httpRefusal(HttpRejection.BadRequest, channel.message) };
  return { ok: true, value: channel };
}

function decodeSegment(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}
