import type { ChannelWires } from "../../core/channel-wires.js";
import type { SessionSocket } from "../../core/ports/session-socket.js";
import type { EdgeWebSocket } from "../../core/ports/edge.js";
import type { CloseCode } from "@sobranie/protocol/codes";
import type { PusherChannel } from "./channel-names.js";
import { PUSHER_CLOSE_CODES } from "./socket-codes.js";
import { pusherChannelWire } from "./socket-channel-wire.js";
import { pusherWatchlistWire } from "./socket-watchlist-wire.js";

/**
 * The SessionSocket of a Pusher connection over an edge WebSocket. The session
 * subscribes it to channels by their names; it joins instead the native
 * topic of the Pusher name it subscribed with, and attaches that name's
 * encoding to the channel in the node's ChannelWires while it does. Close
 * codes are the Pusher ones (PUSHER_CLOSE_CODES).
 *
 * A signed-in connection's watchlist (`watch`) is joined here too, outside
 * the session's subscriptions: it never collides with a `status.<user>`
 * channel the client subscribed itself, and does not count against the
 * subscription limit.
 *
 * Frames are written at once (no corking at the end of the turn): every
 * frame of the connection goes out in the order it was made, topic
 * publishes included. Every call after close is a no-op (the edge's
 * guarantee, and `closed` here for the encodings).
 */
export class PusherSessionSocket<Data> implements SessionSocket {
  private closed = false;
  /** Channel → the topic joined for it. */
  private readonly topics = new Map<string, string>();
  /** The watched users' `status:<user>` channel → the watchlist topic joined for it. */
  private readonly watched = new Map<string, string>();

  constructor(
    private readonly ws: EdgeWebSocket<Data>,
    private readonly wires: ChannelWires,
    /** The Pusher name this connection subscribes `channel` with. */
    private readonly pusherChannelOf: (channel: string) => PusherChannel | undefined,
  ) {}

  send(text: string): void {
    if (!this.closed) this.ws.send(text);
  }

  close(code: CloseCode, reason: string): void {
    this.closeWith(PUSHER_CLOSE_CODES[code], reason);
  }

  /** Closes with a code of the Pusher protocol (PusherCode, or 1000/1009). */
  closeWith(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close(code, reason);
  }

  subscribe(channel: string): void {
    const pusher = this.pusherChannelOf(channel);
    if (this.closed || !pusher || this.topics.has(channel)) return;
    const wire = pusherChannelWire(pusher);
    this.wires.attach(channel, wire);
    this.topics.set(channel, wire.topic);
    this.ws.subscribe(wire.topic);
  }

  unsubscribe(channel: string): void {
    const topic = this.topics.get(channel);
    if (topic === undefined) return;
    this.topics.delete(channel);
    this.wires.detach(channel, topic);
    if (!this.closed) this.ws.unsubscribe(topic);
  }

  /** Joins the watchlist topic of each user, whose `status:<user>` frames come as watchlist events while the socket is open. */
  watch(users: readonly string[]): void {
    for (const user of users) {
      const channel = `status:${user}`;
      if (this.closed || this.watched.has(channel)) continue;
      const wire = pusherWatchlistWire(user);
      this.wires.attach(channel, wire);
      this.watched.set(channel, wire.topic);
      this.ws.subscribe(wire.topic);
    }
  }

  /** A WebSocket ping frame; the client's pong is a heartbeat (socket-route.ts). */
  ping(): void {
    if (!this.closed) this.ws.ping();
  }

  bufferedBytes(): number {
    return this.closed ? 0 : this.ws.bufferedBytes();
  }

  /** The socket is gone (the runtime dropped its topics): its encodings are detached. Idempotent. */
  markClosed(): void {
    this.closed = true;
    for (const [channel, topic] of this.topics) this.wires.detach(channel, topic);
    this.topics.clear();
    for (const [channel, topic] of this.watched) this.wires.detach(channel, topic);
    this.watched.clear();
  }
}
