import { HttpRejection } from "@sobranie/protocol/codes";
import type { Gateway } from "../../core/gateway.js";
import type { NamespaceRegistry } from "../../core/namespaces.js";
import type { Authenticator, Principal } from "../../core/ports/authenticator.js";
import { httpRateLimited, httpRefusal, type HttpRoute, type HttpRouteAnswer, type HttpRouteRequest } from "../../core/ports/http-route.js";
import type { PusherApp, PusherApps } from "./apps.js";
import { isPusherChannelRefusal, type PusherChannelNames } from "./channel-names.js";
import type { PusherEdgeLimits } from "./edge-limits.js";
import { SOCKET_ID_PATTERN } from "./rest-events.js";
import { bearerUser } from "./bearer-user.js";
import { authToken, channelAuthString, userAuthString } from "./signatures.js";

/** pusher-js's form bodies are a few dozen bytes; its `params` option adds a few more. */
const MAX_AUTH_BODY_BYTES = 8_192;

/** Channel authorization: pusher-js's default endpoint and Laravel Echo's. */
export const CHANNEL_AUTH_PATHS = ["/pusher/auth", "/broadcasting/auth"] as const;
/** User authentication (`pusher:signin`): pusher-js's default endpoint and Laravel's. */
export const USER_AUTH_PATHS = ["/pusher/user-auth", "/broadcasting/user-auth"] as const;

export interface PusherAuthDeps {
  readonly apps: PusherApps;
  readonly authenticator: Authenticator;
  readonly namespaces: NamespaceRegistry;
  readonly channelNames: PusherChannelNames;
  readonly gateway: Gateway;
  readonly limits: PusherEdgeLimits;
}

/**
 * Auth endpoints hosted by the gateway, for apps without their own
 * (docs/pusher.md, "Hosted auth"): the caller proves who it is with our JWT
 * (`Authorization: Bearer`), the channel's namespace rule decides as for a
 * native subscribe, and the answer is signed with the app's secret:
 * - channel auth → `{auth}`, or `{auth, channel_data}` on presence channels,
 *   `channel_data` being `{"user_id": sub, "user_info": info}`;
 * - user auth → `{auth, user_data}`, `user_data` being `{"id": sub, "user_info": info}`.
 * The app is the one `?key=` names, or the only one configured.
 * Refusals: 400 bad input, 401 no or a bad token, 403 the rule refuses,
 * 404 unknown app key or namespace, 429 over the address's or user's HTTP rate.
 */
export function pusherAuthRoutes(deps: PusherAuthDeps): HttpRoute[] {
  const route = (pattern: string, sign: (app: PusherApp, principal: Principal, fields: URLSearchParams) => HttpRouteAnswer): HttpRoute => ({
    method: "POST",
    pattern,
    maxBodyBytes: MAX_AUTH_BODY_BYTES,
    headers: ["authorization", "content-type"],
    unavailable: "token keys unavailable, retry shortly",
    handle: (request) => authorize(deps, request, sign),
  });
  return [
    ...CHANNEL_AUTH_PATHS.map((path) => route(path, (app, principal, fields) => channelAuth(deps, app, principal, fields))),
    ...USER_AUTH_PATHS.map((path) => route(path, userAuth)),
  ];
}

async function authorize(
  deps: PusherAuthDeps,
  request: HttpRouteRequest,
  sign: (app: PusherApp, principal: Principal, fields: URLSearchParams) => HttpRouteAnswer,
): Promise<HttpRouteAnswer> {
  const app = appOf(deps.apps, new URLSearchParams(request.query).get("key"));
  if (!app.ok) return app.answer;
  if (!app.value.enabled) return httpRefusal(HttpRejection.Forbidden, `app ${app.value.id} is disabled`);
  const token = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? "")?.[1];
  if (token === undefined) return httpRefusal(HttpRejection.Unauthorized, "a user token is required: Authorization: Bearer <jwt>");
  const bySource = deps.limits.takeSource(request.source);
  if (!bySource.ok) return httpRateLimited("too many requests from this address", bySource.retryAfterMs);
  const fields = formFields(request);
  if (!fields.ok) return fields.answer;
  const socketId = fields.value.get("socket_id");
  if (socketId === null || !SOCKET_ID_PATTERN.test(socketId)) return httpRefusal(HttpRejection.BadRequest, "socket_id must be a Pusher socket id: digits.digits");
  const user = await bearerUser(deps, token);
  if (!user.ok) return user.answer;
  return sign(app.value, user.principal, fields.value);
}

function channelAuth(deps: PusherAuthDeps, app: PusherApp, principal: Principal, fields: URLSearchParams): HttpRouteAnswer {
  const socketId = fields.get("socket_id") ?? "";
  const name = fields.get("channel_name");
  if (name === null) return httpRefusal(HttpRejection.BadRequest, "channel_name is required");
  const channel = deps.channelNames.parse(name);
  if (isPusherChannelRefusal(channel)) {
    return httpRefusal(channel.reason === "unknown_namespace" ? HttpRejection.NotFound : HttpRejection.BadRequest, channel.message);
  }
  if (channel.kind === "public") return httpRefusal(HttpRejection.BadRequest, `${name} is a public channel: it needs no auth`);
  if (channel.kind === "encrypted") {
    return httpRefusal(HttpRejection.BadRequest, `${name}: private-encrypted- channels need the app's own auth endpoint, which holds the encryption master key`);
  }
  const allowed = deps.namespaces.canSubscribe(principal, channel.channel);
  if (!allowed.allowed || deps.gateway.isChannelRevoked(principal, channel.channel.name)) {
    return httpRefusal(HttpRejection.Forbidden, `this token may not subscribe to ${channel.channel.name} (${name})`);
  }
  if (channel.kind !== "presence") return { status: 200, body: { auth: authToken(app, channelAuthString(socketId, name)) } };
  const channelData = JSON.stringify(principal.info === undefined ? { user_id: principal.userId } : { user_id: principal.userId, user_info: principal.info });
  return { status: 200, body: { auth: authToken(app, channelAuthString(socketId, name, channelData)), channel_data: channelData } };
}

function userAuth(app: PusherApp, principal: Principal, fields: URLSearchParams): HttpRouteAnswer {
  const userData = JSON.stringify(principal.info === undefined ? { id: principal.userId } : { id: principal.userId, user_info: principal.info });
  return { status: 200, body: { auth: authToken(app, userAuthString(fields.get("socket_id") ?? "", userData)), user_data: userData } };
}

/** The app `?key=` names, or the only one configured (the browser-facing routes' rule). */
export function appOf(apps: PusherApps, key: string | null): { ok: true; value: PusherApp } | { ok: false; answer: HttpRouteAnswer } {
  if (key !== null) {
    const app = apps.byKey(key);
    return app ? { ok: true, value: app } : { ok: false, answer: httpRefusal(HttpRejection.NotFound, `no Pusher app with key ${JSON.stringify(key.slice(0, 64))}`) };
  }
  const [only, second] = [...apps.all()];
  if (only && !second) return { ok: true, value: only };
  return { ok: false, answer: httpRefusal(HttpRejection.BadRequest, "several Pusher apps are configured: name one with ?key=<app key>") };
}

/** The body as pusher-js sends it (form-encoded), or as JSON `{socket_id, channel_name}`. */
function formFields(request: HttpRouteRequest): { ok: true; value: URLSearchParams } | { ok: false; answer: HttpRouteAnswer } {
  const text = Buffer.from(request.body).toString("utf8");
  if (!/^application\/json\b/i.test(request.headers["content-type"] ?? "")) return { ok: true, value: new URLSearchParams(text) };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, answer: httpRefusal(HttpRejection.BadRequest, "body is not valid JSON") };
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return { ok: false, answer: httpRefusal(HttpRejection.BadRequest, "body must be a JSON object") };
  const fields = new URLSearchParams();
  for (const [name, value] of Object.entries(json)) if (typeof value === "string") fields.set(name, value);
  return { ok: true, value: fields };
}
