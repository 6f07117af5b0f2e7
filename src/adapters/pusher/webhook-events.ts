import * as v from "valibot";
import { parseChannel } from "@sobranie/protocol/channel";
import { PUSHER_CHANNEL_NAME_PATTERN, type PusherChannelNames } from "./channel-names.js";

/**
 * What the webhook consumer takes from `sobranie.events` and the Pusher
 * webhook events it makes of it (docs/pusher.md, "Webhooks"):
 *
 * - `presence.<ns>.<id>.join|leave`, the presence events the gateways
 *   publish once per change cluster-wide (docs/protocol.md §12), become
 *   `member_added`/`member_removed` on `presence-<ns>.<id>`, preceded by
 *   `channel_occupied` when the join made the channel's first member
 *   (`members` 1) and followed by `channel_vacated` when the leave took its
 *   last (`members` 0). They are for every app: apps share the channels.
 * - `presence.<ns>.<id>.occupied|vacated`, published once per change
 *   cluster-wide when a channel got its first Pusher subscription or lost
 *   its last one, become `channel_occupied` / `channel_vacated` on its plain
 *   Pusher name, for every app; on presence channels they give nothing,
 *   their occupancy being their members'.
 * - `pusher.<appId>.<event name>` is the entry point of the Pusher WebSocket
 *   side (client events, cache misses):
 *   its body is one webhook event as Pusher spells it, for that app alone.
 */

export type PusherWebhookEvent =
  | { readonly name: "channel_occupied" | "channel_vacated" | "cache_miss"; readonly channel: string }
  | { readonly name: "member_added" | "member_removed"; readonly channel: string; readonly user_id: string }
  | {
      readonly name: "client_event";
      readonly channel: string;
      readonly event: string;
      readonly data: string;
      readonly socket_id: string;
      readonly user_id?: string;
    };

export type WebhookEventName = PusherWebhookEvent["name"];

/** The prefix of the entry point's routing keys: `pusher.<appId>.<event name>`. */
export const PUSHER_WEBHOOK_ROUTING_PREFIX = "pusher";

/** What a message on the webhook queue asks for; `appId` undefined: every app. */
export type WebhookInput =
  | { readonly ok: true; readonly appId: string | undefined; readonly events: readonly PusherWebhookEvent[] }
  | { readonly ok: false; readonly message: string };

const pusherChannel = v.pipe(v.string(), v.regex(PUSHER_CHANNEL_NAME_PATTERN, "channel must be a Pusher channel name"));
const shortText = (what: string) => v.pipe(v.string(`${what} must be a string`), v.minLength(1, `${what} must not be empty`), v.maxLength(200, `${what} is over 200 characters`));

/** One webhook event as the Pusher WebSocket side publishes it to `pusher.<appId>.<name>`. */
export const PusherWebhookEventSchema = v.variant("name", [
  v.strictObject({ name: v.picklist(["channel_occupied", "channel_vacated", "cache_miss"]), channel: pusherChannel }),
  v.strictObject({ name: v.picklist(["member_added", "member_removed"]), channel: pusherChannel, user_id: shortText("user_id") }),
  v.strictObject({
    name: v.literal("client_event"),
    channel: pusherChannel,
    event: shortText("event"),
    data: v.pipe(v.string("data must be the event's data as a string"), v.maxLength(65_536, "data is over 64 KiB")),
    socket_id: v.pipe(v.string(), v.regex(/^\d+\.\d+$/, "socket_id must be <digits>.<digits>")),
    user_id: v.optional(shortText("user_id")),
  }),
]);

/** The part of a presence join's or leave's envelope the webhooks read (docs/protocol.md §12). */
const MemberChangeSchema = v.object({
  type: v.picklist(["presence.join", "presence.leave"]),
  data: v.object({
    channel: v.string(),
    user: v.string(),
    members: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
    deployment: v.optional(v.string()),
  }),
});

/** The same of a channel's occupancy change (its first or last counted subscriber). */
const OccupancyChangeSchema = v.object({
  type: v.picklist(["presence.occupied", "presence.vacated"]),
  data: v.object({ channel: v.string(), deployment: v.optional(v.string()) }),
});

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * The webhook events a message asks for. A presence event of another
 * deployment (`data.deployment` not ours) asks for none. A presence event
 * without `members` (from a gateway older than that field) gives the member
 * event alone: whether it occupied or vacated the channel is unknown.
 */
/** What reading a message needs besides the message: whose presence events count, and how channels are named. */
export interface WebhookInputContext {
  readonly deploymentId: string | undefined;
  readonly channelNames: PusherChannelNames;
}

export function webhookInputOf(routingKey: string, body: Uint8Array, context: WebhookInputContext): WebhookInput {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(body));
  } catch (error) {
    return { ok: false, message: `body is not UTF-8 JSON: ${(error as Error).message}` };
  }
  const words = routingKey.split(".");
  if (words[0] === PUSHER_WEBHOOK_ROUTING_PREFIX && words.length === 3) return entryPointInput(words[1] ?? "", words[2] ?? "", json);
  if (words[0] === "presence" && words.length === 4) {
    const occupancy = words[3] === "occupied" || words[3] === "vacated";
    if (occupancy || words[3] === "join" || words[3] === "leave") return presenceInput(json, occupancy, context);
  }
  return { ok: false, message: `routing key ${routingKey} is neither presence.<ns>.<id>.join|leave|occupied|vacated nor ${PUSHER_WEBHOOK_ROUTING_PREFIX}.<appId>.<event name>` };
}

function entryPointInput(appId: string, name: string, json: unknown): WebhookInput {
  const parsed = v.safeParse(PusherWebhookEventSchema, json);
  if (!parsed.success) return { ok: false, message: `webhook event for app ${appId}: ${v.summarize(parsed.issues)}` };
  if (parsed.output.name !== name) return { ok: false, message: `webhook event named ${parsed.output.name} under routing key word ${name}` };
  return { ok: true, appId, events: [parsed.output] };
}

function presenceInput(json: unknown, occupancy: boolean, context: WebhookInputContext): WebhookInput {
  const parsed = occupancy ? v.safeParse(OccupancyChangeSchema, json) : v.safeParse(MemberChangeSchema, json);
  if (!parsed.success) return { ok: false, message: `presence event: ${v.summarize(parsed.issues)}` };
  const change = parsed.output;
  if (change.data.deployment !== context.deploymentId) return { ok: true, appId: undefined, events: [] };
  const channel = parseChannel(change.data.channel);
  if (!channel) return { ok: false, message: `presence event: channel ${change.data.channel} is not namespace:id` };
  if ("user" in change.data) {
    const member = change.data;
    return { ok: true, appId: undefined, events: memberEvents(change.type === "presence.join", member, context.channelNames.nameOf(channel.namespace, channel.id, "presence", false)) };
  }
  const plain = context.channelNames.plainChannelOf(channel.namespace, channel.id);
  if (plain === undefined) return { ok: false, message: `presence event: channel ${change.data.channel} is of no configured namespace` };
  // A presence channel's occupancy is its members' (the join and leave above), whoever subscribes it.
  if (plain.kind === "presence") return { ok: true, appId: undefined, events: [] };
  return { ok: true, appId: undefined, events: [{ name: change.type === "presence.occupied" ? "channel_occupied" : "channel_vacated", channel: plain.pusherName }] };
}

/** A join's or a leave's member event, with the occupancy its `members` count shows. */
function memberEvents(joined: boolean, data: { user: string; members?: number | undefined }, pusherName: string): PusherWebhookEvent[] {
  if (joined) {
    const added: PusherWebhookEvent = { name: "member_added", channel: pusherName, user_id: data.user };
    return data.members === 1 ? [{ name: "channel_occupied", channel: pusherName }, added] : [added];
  }
  const removed: PusherWebhookEvent = { name: "member_removed", channel: pusherName, user_id: data.user };
  return data.members === 0 ? [removed, { name: "channel_vacated", channel: pusherName }] : [removed];
}
