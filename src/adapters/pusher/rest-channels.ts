import { parseChannel, type Channel } from "@sobranie/protocol/channel";
import type { Gateway } from "../../core/gateway.js";
import type { NamespaceRegistry } from "../../core/namespaces.js";
import { pusherKindOf, type PusherChannel, type PusherChannelNames } from "./channel-names.js";
import type { EventInfoAttribute } from "./rest-events.js";

/**
 * What the REST API reports about channels (docs/pusher.md, "Occupancy"):
 * presence channels from the presence tracker, which every node holds for
 * the whole cluster (exact: `occupied`, `user_count`, the member list);
 * subscriptions from this node's own count (`subscription_count`, and
 * `occupied` of a non-presence channel): this node's view, not the cluster's.
 */

export interface ChannelOccupancy {
  readonly occupied: boolean;
  /** Presence channels only: members anywhere in the cluster. */
  readonly userCount: number | undefined;
  /** Subscriptions on this node. */
  readonly subscriptionCount: number;
}

export function occupancyOf(gateway: Gateway, channel: Pick<PusherChannel, "channel" | "kind">): ChannelOccupancy {
  const subscriptionCount = gateway.localSubscriptions(channel.channel);
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
 * `post.1`, `private-user.ada`): presence channels with members anywhere,
 * and channels with subscriptions on this node.
 */
export function occupiedChannels(gateway: Gateway, namespaces: NamespaceRegistry, names: PusherChannelNames): Map<string, Pick<PusherChannel, "channel" | "kind">> {
  const occupied = new Map<string, Pick<PusherChannel, "channel" | "kind">>();
  const add = (channel: Channel): void => {
    const policy = namespaces.get(channel.namespace);
    if (!policy) return;
    const kind = pusherKindOf(policy);
    occupied.set(names.nameOf(channel.namespace, channel.id, kind, false), { channel, kind });
  };
  for (const channel of gateway.locallySubscribedChannels()) add(channel);
  for (const { channel: name } of gateway.presence.channels()) {
    const channel = parseChannel(name);
    if (channel) add(channel);
  }
  return occupied;
}
