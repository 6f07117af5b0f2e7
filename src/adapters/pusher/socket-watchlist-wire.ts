import type { ChannelWire, WireFrame } from "../../core/channel-wires.js";
import { watchlistEvents } from "./socket-frames.js";

/** The native topic of the connections watching `user`: `#` is outside Pusher's channel alphabet, so no Pusher channel's topic (pusherTopic) is ever one. */
export function watchlistTopic(user: string): string {
  return `pusher/#watchlist-${user}`;
}

/**
 * The watchlist events of one user, attached to the channel `status:<user>`:
 * each `status` frame there (the user's first connection anywhere opened, or
 * their last one closed; docs/protocol.md §12) becomes an `online` or
 * `offline` watchlist event for the connections watching them. Every other
 * frame of the channel (events published to `status:<user>`) is not sent.
 */
export function pusherWatchlistWire(user: string): ChannelWire {
  return {
    topic: watchlistTopic(user),
    encode(frame: WireFrame): string | undefined {
      return frame.op === "status" ? watchlistEvents(frame.online ? "online" : "offline", [frame.user]) : undefined;
    },
  };
}
