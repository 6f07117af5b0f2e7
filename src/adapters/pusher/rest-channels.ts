import { parseChannel } from "@sobranie/protocol/channel";
import type { Gateway } from "../../core/gateway.js";
import type { PusherChannel, PusherChannelNames } from "./channel-names.js";
import type { EventInfoAttribute } from "./rest-events.js";

/**
 * What the REST API reports about channels (docs/pusher.md, "Occupancy"),
 * all from the presence tracker, which every node holds for the whole
 * cluster: presence channels' members (`occupied`, `user_count`, the member
 * list) and the Pusher subscriptions of every channel
 * (`subscription_count`, and `occupied` of a non-presence channel).
 */

export interface ChannelOccupancy {
  readonly occupied: boolean;
  /** Presence channels only: members anywhere in the cluster. */
  readonly userCount: number | undefined;
  /** Pusher subscriptions anywhere in the cluster. */
  readonly subscriptionCount: number;
}

export function occupancyOf(gateway: Gateway, channel: Pick<PusherChannel, "channel" | "kind">): ChannelOccupancy {
  const subscriptionCount = gateway.presence.subscriberCount(channel.channel.name);
  if (channel.kind !== "presence") return { occupied: subscriptionCount > 0, userCount: undefined, subscriptionCount };
  const userCount = gateway.presence.members(channel.channel.name).count;
  return { occupied: userCount > 0 || subscriptionCount > 0, userCount, subscriptionCount };
}

/** The `info` attributes asked for, as the REST API spells them; user_count only where there is one. */
export function infoOf(occupancy: ChannelOccupancy, attributes: readonly EventInfoAttribute[]): Record<string, number> {
  const info: Record<string, number> = {};
  if (attributes.includes("user_count") && occupancy.userCount !== undefined) info.user_count = occupancy.userCount;
  if (attributes.includes("subscription_count")) info.subscription_count = occupancy.subscriptionCount;
  return info;
}

/**
 * The occupied channels by Pusher name (the plain variant: `presence-room.7`,
 * `post.1`, `private-user.ada`): presence channels with members and channels
 * with Pusher subscriptions, anywhere in the cluster.
 */
export function occupiedChannels(gateway: Gateway, names: PusherChannelNames): Map<string, Pick<PusherChannel, "channel" | "kind">> {
  const occupied = new Map<string, Pick<PusherChannel, "channel" | "kind">>();
  for (const { channel: name } of [...gateway.presence.subscribedChannels(), ...gateway.presence.channels()]) {
    const channel = parseChannel(name);
    const plain = channel && names.plainChannelOf(channel.namespace, channel.id);
    if (plain) occupied.set(plain.pusherName, plain);
  }
  return occupied;
}
