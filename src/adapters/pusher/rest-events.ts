import * as v from "valibot";
import { EVENT_TYPE_PATTERN, EVENT_TYPE_RULE, type Channel } from "@sobranie/protocol/channel";
import { eventDataMessage, eventDataProblem } from "@sobranie/protocol/event-data";
import { serverToUserChannel, type PusherChannelNames, type PusherChannel, type PusherChannelKind, type PusherChannelRefusal } from "./channel-names.js";

/**
 * The bodies of `POST /apps/{id}/events` and `/batch_events` (docs/pusher.md,
 * "REST API"), turned into one publish per distinct channel. Pusher's own
 * limits apply: at most MAX_EVENT_CHANNELS channels per event,
 * MAX_BATCH_EVENTS events per batch, MAX_EVENT_DATA_BYTES of `data` each.
 */

export const MAX_EVENT_CHANNELS = 100;
export const MAX_BATCH_EVENTS = 10;
/** Pusher's limit on one event's `data` string, in UTF-8 bytes. */
export const MAX_EVENT_DATA_BYTES = 10_240;
/** The `socket_id` a Pusher connection is given: `\d+\.\d+`. */
export const SOCKET_ID_PATTERN = /^\d{1,20}\.\d{1,20}$/;

/** What `info` may ask for about each channel of an event. */
export const EVENT_INFO_ATTRIBUTES = ["user_count", "subscription_count"] as const;
export type EventInfoAttribute = (typeof EVENT_INFO_ATTRIBUTES)[number];

/** One event for one channel: what goes to `sobranie.events`. */
export interface PusherPublish {
  readonly channel: Channel;
  /** The Pusher name it was published to first (the one `info` reports under). */
  readonly pusherName: string;
  readonly kind: PusherChannelKind;
  readonly type: string;
  readonly data: unknown;
  readonly excludeSocket: string | undefined;
}

export type PusherEventsParse =
  | { readonly ok: true; readonly publishes: PusherPublish[]; readonly info: readonly EventInfoAttribute[] }
  | { readonly ok: false; readonly tooLarge: boolean; readonly message: string };


const socketId = v.pipe(v.string("socket_id must be a string"), v.regex(SOCKET_ID_PATTERN, "socket_id must be a Pusher socket id: digits.digits"));
const info = v.pipe(v.string("info must be a string"), v.maxLength(200, "info is at most 200 characters"));
const eventFields = {
  name: v.pipe(v.string("name must be a string"), v.maxLength(200, "name is at most 200 characters")),
  data: v.string("data must be a string (JSON-encode objects first, as the SDKs do)"),
  socket_id: v.optional(socketId),
  info: v.optional(info),
};
const EventBodySchema = v.object({
  ...eventFields,
  channels: v.optional(v.array(v.string("channels must be strings"), "channels must be an array")),
  channel: v.optional(v.string("channel must be a string")),
});
const BatchBodySchema = v.object({
  batch: v.array(v.object({ ...eventFields, channel: v.string("channel must be a string") }), "batch must be an array"),
});

/** `{name, data, channels | channel, socket_id?, info?}`: one publish per distinct channel. */
export function parseEventsBody(json: unknown, channelNames: PusherChannelNames): PusherEventsParse {
  const parsed = v.safeParse(EventBodySchema, json);
  if (!parsed.success) return bad(v.summarize(parsed.issues));
  const body = parsed.output;
  if ((body.channels === undefined) === (body.channel === undefined)) return bad("give either channels (an array) or channel (a string)");
  const names = body.channels ?? [body.channel ?? ""];
  if (names.length === 0) return bad("channels is empty");
  if (names.length > MAX_EVENT_CHANNELS) return bad(`at most ${MAX_EVENT_CHANNELS} channels per event, not ${names.length}`);
  const attributes = parseInfo(body.info);
  if (!attributes.ok) return attributes;
  const publishes = eventPublishes(body, names, channelNames, body.channels === undefined ? "channel" : "channels");
  return publishes.ok ? { ok: true, publishes: publishes.publishes, info: attributes.info } : publishes;
}

/** `{batch: [{channel, name, data, socket_id?, info?}]}` with at most MAX_BATCH_EVENTS events: one publish each, in order. */
export function parseBatchBody(json: unknown, channelNames: PusherChannelNames): PusherEventsParse {
  const parsed = v.safeParse(BatchBodySchema, json);
  if (!parsed.success) return bad(v.summarize(parsed.issues));
  const { batch } = parsed.output;
  if (batch.length > MAX_BATCH_EVENTS) return bad(`at most ${MAX_BATCH_EVENTS} events per batch, not ${batch.length}`);
  const publishes: PusherPublish[] = [];
  const info = new Set<EventInfoAttribute>();
  for (const [index, event] of batch.entries()) {
    const attributes = parseInfo(event.info);
    if (!attributes.ok) return { ...attributes, message: `batch.${index}: ${attributes.message}` };
    for (const attribute of attributes.info) info.add(attribute);
    const one = eventPublishes(event, [event.channel], channelNames, "channel");
    if (!one.ok) return { ...one, message: `batch.${index}: ${one.message}` };
    publishes.push(...one.publishes);
  }
  return { ok: true, publishes, info: [...info] };
}

/**
 * `data` as our envelope carries it: a string holding a JSON object or
 * array becomes that object or array (native subscribers get structured
 * data, Pusher subscribers its JSON again); any other string, a JSON scalar
 * included, stays the string it is.
 */
export function eventDataOf(data: string): { ok: true; data: unknown } | { ok: false; message: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return { ok: true, data };
  }
  if (typeof parsed !== "object" || parsed === null) return { ok: true, data };
  const problem = eventDataProblem(parsed);
  return problem ? { ok: false, message: eventDataMessage(problem) } : { ok: true, data: parsed };
}

function eventPublishes(
  event: { name: string; data: string; socket_id?: string | undefined },
  names: readonly string[],
  channelNames: PusherChannelNames,
  field: "channel" | "channels",
): { ok: true; publishes: PusherPublish[] } | { ok: false; tooLarge: boolean; message: string } {
  if (!EVENT_TYPE_PATTERN.test(event.name)) return bad(`event name ${JSON.stringify(event.name.slice(0, 64))} is refused: ${EVENT_TYPE_RULE} (docs/pusher.md, "Event names")`);
  const bytes = Buffer.byteLength(event.data, "utf8");
  if (bytes > MAX_EVENT_DATA_BYTES) return { ok: false, tooLarge: true, message: `data is ${bytes} bytes, over the ${MAX_EVENT_DATA_BYTES} bytes of one event` };
  const data = eventDataOf(event.data);
  if (!data.ok) return bad(data.message);
  const publishes: PusherPublish[] = [];
  const seen = new Set<string>();
  for (const [index, name] of names.entries()) {
    const mapped = eventChannelOf(name, channelNames);
    if ("reason" in mapped) return bad(field === "channels" ? `channels.${index}: ${mapped.message}` : mapped.message);
    // `post.1` and `cache-post.1` are one channel: it gets the event once.
    if (seen.has(mapped.channel.name)) continue;
    seen.add(mapped.channel.name);
    publishes.push({ channel: mapped.channel, pusherName: name, kind: mapped.kind, type: event.name, data: data.data, excludeSocket: event.socket_id });
  }
  return { ok: true, publishes };
}

/** A channel an event may go to: a Pusher channel name, or a signed-in user's `#server-to-user-<id>` (backed by `user:<id>`). */
function eventChannelOf(name: string, channelNames: PusherChannelNames): Pick<PusherChannel, "channel" | "kind"> | PusherChannelRefusal {
  const toUser = serverToUserChannel(name);
  return toUser ? { channel: toUser, kind: "private" } : channelNames.parse(name);
}

function parseInfo(text: string | undefined): { ok: true; info: EventInfoAttribute[] } | { ok: false; tooLarge: false; message: string } {
  if (text === undefined || text === "") return { ok: true, info: [] };
  const info: EventInfoAttribute[] = [];
  for (const attribute of text.split(",")) {
    const known = EVENT_INFO_ATTRIBUTES.find((name) => name === attribute);
    if (!known) return bad(`info takes ${EVENT_INFO_ATTRIBUTES.join(", ")}, comma-separated; not ${JSON.stringify(attribute.slice(0, 64))}`);
    info.push(known);
  }
  return { ok: true, info };
}

function bad(message: string): { ok: false; tooLarge: false; message: string } {
  return { ok: false, tooLarge: false, message };
}
