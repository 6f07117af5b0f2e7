import type { ChannelWire, WireFrame } from "../../core/channel-wires.js";
import type { EventOrigin } from "../../core/ports/session-socket.js";
import { showsSubscriptionCount, type PusherChannel } from "./channel-names.js";
import { dataWithSeq } from "./seq-data.js";
import { channelEvent, subscriptionCount } from "./socket-frames.js";

/** The native topic of one Pusher channel name: `/` is outside the channel grammar, so no channel's own topic is ever one. */
export function pusherTopic(pusherName: string): string {
  return `pusher/${pusherName}`;
}

/**
 * A channel's frames as the Pusher subscribers of one of its names get them,
 * serialized once per frame for all of them: events, and on presence
 * channels `member_added`/`member_removed` from the cluster's join and leave,
 * and on the others `pusher_internal:subscription_count` from the cluster's
 * count of Pusher subscriptions (pusher-js's `pusher:subscription_count`;
 * not on `#server-to-user-`, which is one user's).
 * Frames Pusher has no equivalent for (`gap`, a busy room's `members`
 * counts, `read`) are not sent (docs/pusher.md, "What exists"). On a
 * channel with `seqInData`, a stored event's `seq` goes inside its data
 * (seq-data.ts); an event without one (never stored) goes as it is.
 */
export function pusherChannelWire(pusher: PusherChannel): ChannelWire {
  const channel = pusher.pusherName;
  const presence = pusher.kind === "presence";
  const showsCount = showsSubscriptionCount(pusher);
  return {
    topic: pusherTopic(channel),
    encode(frame: WireFrame, origin: EventOrigin | undefined): string | undefined {
      switch (frame.op) {
        case "event": {
          const data = pusher.seqInData && frame.seq !== undefined ? dataWithSeq(frame.data, frame.seq) : frame.data;
          // As Pusher: presence channels name the client that triggered an event.
          return channelEvent(channel, frame.type, data, presence ? origin?.user : undefined);
        }
        case "join": {
          if (!presence) return undefined;
          const member = frame.info === undefined ? { user_id: frame.user } : { user_id: frame.user, user_info: frame.info };
          return JSON.stringify({ event: "pusher_internal:member_added", channel, data: JSON.stringify(member) });
        }
        case "leave":
          return presence ? JSON.stringify({ event: "pusher_internal:member_removed", channel, data: JSON.stringify({ user_id: frame.user }) }) : undefined;
        case "subscriber_count":
          return showsCount ? subscriptionCount(channel, frame.count) : undefined;
        default:
          return undefined;
      }
    },
  };
}
