import { encodeServerFrame, type ServerFrame } from "@sobranie/protocol/frames";

/**
 * How a session's own frames (welcome, replies, `reconnect`, …) are written
 * on its connection: protocol v1 by default, or another wire format that
 * speaks to the same core (the Pusher protocol, src/adapters/pusher/).
 * Frames of channels go through native topics instead (see ChannelWires).
 */
export interface SessionWire {
  /** The frame as this wire writes it; undefined: the wire has no such frame, and nothing is sent. */
  encode(frame: ServerFrame): string | undefined;
  /**
   * Whether the connection counts its user online (status, docs/protocol.md
   * §12). False where the connection's user id names no user (a Pusher
   * socket's own id), so nobody's status changes with it.
   */
  readonly countsUserOnline: boolean;
  /**
   * Whether the connection's subscriptions are counted cluster-wide
   * (PresenceHandle.countSubscriber):
   * what a wire that shows subscriber counts and occupancy needs (the Pusher
   * protocol's `subscription_count`, `channel_occupied`). Protocol v1 has
   * neither, and its subscriptions are not counted.
   */
  readonly countsSubscribers: boolean;
  /**
   * The connection's id that its own publishes carry as the event's excluded
   * socket (`x-sobranie-exclude-socket`), so they do not come back to it (a
   * Pusher socket_id: Pusher never echoes a client event). Undefined:
   * protocol v1, where a broadcast publish reaches its sender too.
   */
  readonly excludeId: string | undefined;
}

/** Protocol v1 (docs/protocol.md §4). */
export const NATIVE_WIRE: SessionWire = { encode: encodeServerFrame, countsUserOnline: true, countsSubscribers: false, excludeId: undefined };
