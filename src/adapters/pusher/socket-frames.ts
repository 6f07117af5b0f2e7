import * as v from "valibot";

/**
 * The Pusher protocol's frames on the WebSocket (pusher-websockets-protocol,
 * "Events"): what a client sends, validated here, and what the gateway
 * writes. Every frame is a JSON object `{event, channel?, data?}`; the
 * server writes `data` as a JSON *string* (as Pusher does) except in
 * `pusher:error` and `pusher:subscription_error`, whose `data` is an object.
 */

const channelName = v.pipe(v.string("channel must be a string"), v.minLength(1), v.maxLength(200));

const SubscribeData = v.object({
  channel: channelName,
  auth: v.optional(v.string("auth must be a string")),
  channel_data: v.optional(v.string("channel_data must be a string")),
});

const SigninData = v.object({
  auth: v.string("auth must be a string"),
  user_data: v.pipe(v.string("user_data must be a string"), v.maxLength(16_384)),
});

/** A client frame after validation; client events keep their name and data as sent. */
export type PusherClientFrame =
  | { readonly event: "pusher:ping" | "pusher:pong" }
  | { readonly event: "pusher:subscribe"; readonly data: v.InferOutput<typeof SubscribeData> }
  | { readonly event: "pusher:unsubscribe"; readonly channel: string }
  | { readonly event: "pusher:signin"; readonly data: v.InferOutput<typeof SigninData> }
  | { readonly event: "client"; readonly name: string; readonly channel: string; readonly data: unknown };

export type ReadPusherFrame = { ok: true; frame: PusherClientFrame } | { ok: false; message: string };

/** Never throws: a frame that is not JSON, not an object, of an unknown event or with bad fields comes back with a message. */
export function readPusherFrame(text: string): ReadPusherFrame {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, message: "frame is not valid JSON" };
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return { ok: false, message: "a frame is a JSON object {event, channel?, data?}" };
  const { event, channel, data } = json as { event?: unknown; channel?: unknown; data?: unknown };
  if (typeof event !== "string") return { ok: false, message: "event must be a string" };
  // Some clients send `data` as a JSON string, as the server does.
  const body = typeof data === "string" && event.startsWith("pusher:") ? parseOr(data) : data;
  switch (event) {
    case "pusher:ping":
    case "pusher:pong":
      return { ok: true, frame: { event } };
    case "pusher:subscribe": {
      const parsed = v.safeParse(SubscribeData, body);
      return parsed.success ? { ok: true, frame: { event, data: parsed.output } } : { ok: false, message: `pusher:subscribe: ${v.summarize(parsed.issues)}` };
    }
    case "pusher:unsubscribe": {
      const parsed = v.safeParse(v.object({ channel: channelName }), body);
      return parsed.success ? { ok: true, frame: { event, channel: parsed.output.channel } } : { ok: false, message: `pusher:unsubscribe: ${v.summarize(parsed.issues)}` };
    }
    case "pusher:signin": {
      const parsed = v.safeParse(SigninData, body);
      return parsed.success ? { ok: true, frame: { event, data: parsed.output } } : { ok: false, message: `pusher:signin: ${v.summarize(parsed.issues)}` };
    }
    default:
      if (event.startsWith("client-")) {
        if (typeof channel !== "string") return { ok: false, message: `${clip(event)}: channel must be a string` };
        return { ok: true, frame: { event: "client", name: event, channel, data } };
      }
      return { ok: false, message: `unknown event "${clip(event)}": the gateway takes pusher:ping, pusher:pong, pusher:subscribe, pusher:unsubscribe, pusher:signin and client-* events` };
  }
}

export function connectionEstablished(socketId: string, activityTimeoutSec: number): string {
  return JSON.stringify({ event: "pusher:connection_established", data: JSON.stringify({ socket_id: socketId, activity_timeout: activityTimeoutSec }) });
}

export function pusherError(code: number | null, message: string): string {
  return JSON.stringify({ event: "pusher:error", data: { code, message } });
}

/** The channel's subscriptions, cluster-wide: pusher-js sets `channel.subscriptionCount` and emits `pusher:subscription_count`. */
export function subscriptionCount(channel: string, count: number): string {
  return JSON.stringify({ event: "pusher_internal:subscription_count", channel, data: JSON.stringify({ subscription_count: count }) });
}

export const PUSHER_PING = JSON.stringify({ event: "pusher:ping", data: "{}" });
export const PUSHER_PONG = JSON.stringify({ event: "pusher:pong", data: "{}" });

/** `data`: what pusher-js hands the app's `pusher:subscription_succeeded` callback ({} on channels without presence). */
export function subscriptionSucceeded(channel: string, data: unknown): string {
  return JSON.stringify({ event: "pusher_internal:subscription_succeeded", channel, data: JSON.stringify(data) });
}

/** `data.user_data`: the signed `user_data` text as sent, which pusher-js reads the user from. */
export function signinSuccess(userData: string): string {
  return JSON.stringify({ event: "pusher:signin_success", data: JSON.stringify({ user_data: userData }) });
}

/**
 * Watched users who came online or went offline (pusher-js: `user.watchlist.bind("online" | "offline")`,
 * each entry emitted as `{name, user_ids}`).
 */
export function watchlistEvents(name: "online" | "offline", userIds: readonly string[]): string {
  return JSON.stringify({ event: "pusher_internal:watchlist_events", data: JSON.stringify({ events: [{ name, user_ids: userIds }] }) });
}

/** A `cache-` channel had no event to replay on subscribe (pusher-js: `channel.bind("pusher:cache_miss")`). */
export function cacheMiss(channel: string): string {
  return JSON.stringify({ event: "pusher:cache_miss", channel });
}

/** As Pusher servers answer a refused subscription: `{type, error, status}`; the socket stays. */
export function subscriptionError(channel: string, type: "AuthError" | "SubscriptionError", error: string, status: number): string {
  return JSON.stringify({ event: "pusher:subscription_error", channel, data: { type, error, status } });
}

/**
 * An event as Pusher subscribers receive it: `data` is the envelope's data as
 * JSON text, or the string itself when the data is a string (a Pusher
 * publisher's non-JSON `data`), so what was published as JSON text comes
 * back as the same JSON.
 */
export function channelEvent(channel: string, event: string, data: unknown, userId?: string): string {
  return JSON.stringify(pusherEvent(channel, event, data, userId));
}

/** The object channelEvent writes: what the history endpoint answers too, so an event reads the same both ways. */
export function pusherEvent(channel: string, event: string, data: unknown, userId?: string): PusherEvent {
  const text = typeof data === "string" ? data : JSON.stringify(data ?? null);
  return userId === undefined ? { event, channel, data: text } : { event, channel, data: text, user_id: userId };
}

export interface PusherEvent {
  readonly event: string;
  readonly channel: string;
  readonly data: string;
  readonly user_id?: string;
}

function parseOr(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function clip(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}
