import type { ServerFrame } from "@sobranie/protocol/frames";
import type { EventOrigin, LocalFanout } from "./ports/session-socket.js";

/**
 * A frame only other wire formats have: the channel's counted subscribers
 * cluster-wide changed (PresenceHandle.countSubscriber). Protocol v1
 * sockets never get it.
 */
export interface SubscriberCountFrame {
  readonly op: "subscriber_count";
  readonly count: number;
}

/** What a ChannelWire encodes: a channel's frame, or one only other wire formats have. */
export type WireFrame = ServerFrame | SubscriberCountFrame;

/**
 * A second wire format's encoding of one channel's frames (the Pusher
 * protocol's, docs/pusher.md), published on a native topic of its own.
 */
export interface ChannelWire {
  /** The native topic its sockets join; never a channel name. */
  readonly topic: string;
  /** The frame in this wire format; undefined: the format has no such frame, and nothing is sent. */
  encode(frame: WireFrame, origin: EventOrigin | undefined): string | undefined;
}

/** Publishes to every local subscriber of `topic` but one socket (uWS's `ws.publish` from that socket). */
export type PublishAround = (topic: string, text: string) => void;

/**
 * The node's LocalFanout with other wire formats beside protocol v1: a frame
 * published to a channel goes to the channel's native topic as it is and, for
 * each wire attached to the channel, re-encoded once and published to that
 * wire's topic. A wire is attached while some local socket uses it
 * (reference-counted by its users), so a channel without such sockets costs
 * one map lookup per frame and native fan-out is otherwise unchanged.
 *
 * The other encodings start from the native text: a channel with attached
 * wires costs one JSON.parse per frame, shared by its wires.
 *
 * An event whose origin excludes a socket (EventOrigin.excludeSocket) skips
 * that socket when it is one of this node's, registered with `addSocket`:
 * other wire formats have socket ids, protocol v1 sockets have none.
 */
export class ChannelWires implements LocalFanout {
  private readonly byChannel = new Map<string, Map<string, { wire: ChannelWire; users: number }>>();
  private readonly sockets = new Map<string, PublishAround>();

  constructor(private readonly native: LocalFanout) {}

  /** One more user of `wire` on `channel` (the first attaches it). */
  attach(channel: string, wire: ChannelWire): void {
    let wires = this.byChannel.get(channel);
    if (!wires) this.byChannel.set(channel, (wires = new Map()));
    const entry = wires.get(wire.topic);
    if (entry) entry.users += 1;
    else wires.set(wire.topic, { wire, users: 1 });
  }

  /** One user fewer of the wire on `topic` (the last detaches it). */
  detach(channel: string, topic: string): void {
    const wires = this.byChannel.get(channel);
    const entry = wires?.get(topic);
    if (!wires || !entry) return;
    entry.users -= 1;
    if (entry.users > 0) return;
    wires.delete(topic);
    if (wires.size === 0) this.byChannel.delete(channel);
  }

  /** A local socket with the id `socketId` that events may exclude, until `removeSocket`. */
  addSocket(socketId: string, publishAround: PublishAround): void {
    this.sockets.set(socketId, publishAround);
  }

  removeSocket(socketId: string): void {
    this.sockets.delete(socketId);
  }

  publish(topic: string, text: string, origin?: EventOrigin): number {
    let recipients = this.native.publish(topic, text);
    const wires = this.byChannel.get(topic);
    if (!wires) return recipients;
    const frame = JSON.parse(text) as ServerFrame;
    const around = origin?.excludeSocket === undefined ? undefined : this.sockets.get(origin.excludeSocket);
    for (const { wire } of wires.values()) {
      const encoded = wire.encode(frame, origin);
      if (encoded === undefined) continue;
      // Counted as every subscriber: the excluded one among them is not told apart.
      recipients += this.native.subscribers(wire.topic);
      if (around) around(wire.topic, encoded);
      else this.native.publish(wire.topic, encoded);
    }
    return recipients;
  }

  /** A frame for the wires attached to `channel` alone (native subscribers never get it); returns the local recipients. */
  publishToWires(channel: string, frame: WireFrame): number {
    let recipients = 0;
    for (const { wire } of this.byChannel.get(channel)?.values() ?? []) {
      const encoded = wire.encode(frame, undefined);
      if (encoded === undefined) continue;
      recipients += this.native.publish(wire.topic, encoded);
    }
    return recipients;
  }

  subscribers(topic: string): number {
    let count = this.native.subscribers(topic);
    for (const { wire } of this.byChannel.get(topic)?.values() ?? []) count += this.native.subscribers(wire.topic);
    return count;
  }
}
