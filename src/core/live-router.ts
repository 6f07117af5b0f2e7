import type { GapReason } from "@sobranie/protocol/codes";
import { parseRoutingKey, routingPrefix } from "@sobranie/protocol/channel";
import { decodeEnvelope, type Envelope } from "@sobranie/protocol/envelope";
import { encodeServerFrame, type EventFrame, type ServerFrame } from "@sobranie/protocol/frames";
import type { ChannelBindings } from "./channel-bindings.js";
import { deadLetter, HANDLER_FAILED_REASON } from "./dead-letter.js";
import { READ_SYNC_TYPE, storedEventFrame } from "./event-frames.js";
import { FeedRepair } from "./feed-repair.js";
import type { NamespaceRegistry } from "./namespaces.js";
import type { DeliveryOutcome, LiveDelivery } from "./ports/broker.js";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { EventStore, StoredEvent } from "./ports/event-store.js";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Metrics } from "./ports/metrics.js";
import type { EventOrigin, LocalFanout } from "./ports/session-socket.js";
import type { RecoverySink } from "./session-context.js";

/**
 * Broker deliveries to this node's sessions: each routed to its channel's
 * local subscribers (the runtime's native topic publish) and to the sessions
 * recovering that channel, and the live feed repaired after a broker
 * interruption (FeedRepair, which it owns).
 *
 * Guarantees: an event is decoded once, serialized once, and handed to the
 * native publish, with no JavaScript loop over sockets; a durable event is
 * delivered at most once per node (a seq at or below the channel's last is
 * dropped); a delivery that cannot be used is dead-lettered with a reason,
 * never thrown.
 */

export interface LiveRouterDeps {
  readonly namespaces: NamespaceRegistry;
  readonly bindings: ChannelBindings;
  readonly fanout: LocalFanout;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Ids for envelopes that came without one and without a message id. */
  readonly newId: () => string;
  /** Where the feed repair reads missed history; absent on a node without a store. */
  readonly store?: EventStore | undefined;
  /** History read per store call by the feed repair. */
  readonly pageSize: number;
}

export class LiveRouter {
  /** Repairs the live feed after a broker interruption; started, stopped and told of the broker by the gateway. */
  readonly repair: FeedRepair;
  /** Highest seq delivered per bound routing prefix: relayed duplicates are dropped here, once per node. */
  private readonly lastSeq = new Map<string, number>();
  /** Sessions recovering a channel get its live frames in a buffer until their history is sent. */
  private readonly recovering = new Map<string, Set<RecoverySink>>();

  constructor(private readonly deps: LiveRouterDeps) {
    this.repair = new FeedRepair({
      store: deps.store,
      clock: deps.clock,
      logger: deps.logger.child({ component: "feed-repair" }),
      metrics: deps.metrics,
      pageSize: deps.pageSize,
      subscribedChannels: () => this.subscribedChannels(),
      isSubscribed: (channel) => deps.bindings.has(channel.replace(":", ".")),
      deliverStored: (event) => this.deliverStored(event),
      announceGap: (channel, reason) => this.announceGap(channel, reason),
    });
  }

  /**
   * Never throws: an event that cannot be used is dead-lettered with a
   * reason, counted and logged once, and so is any unexpected failure
   * (reason `internal`); the queue and the node go on either way.
   */
  handle(delivery: LiveDelivery): DeliveryOutcome {
    try {
      return this.route(delivery);
    } catch (error) {
      return deadLetter(this.deps, HANDLER_FAILED_REASON, `delivery failed: ${error instanceof Error ? error.message : String(error)}`, error);
    }
  }

  beginRecovery(channel: string, sink: RecoverySink): void {
    let sinks = this.recovering.get(channel);
    if (!sinks) this.recovering.set(channel, (sinks = new Set()));
    sinks.add(sink);
  }

  endRecovery(channel: string, sink: RecoverySink): void {
    const sinks = this.recovering.get(channel);
    sinks?.delete(sink);
    if (sinks?.size === 0) this.recovering.delete(channel);
  }

  /** The binding of `prefix` expired: its last seq goes with it. */
  forget(prefix: string): void {
    this.lastSeq.delete(prefix);
  }

  private route(delivery: LiveDelivery): DeliveryOutcome {
    const route = parseRoutingKey(delivery.routingKey);
    if (!route) return deadLetter(this.deps, "bad_routing_key", `routing key ${delivery.routingKey} names no channel and type`);
    const { channel } = route;
    const namespace = this.deps.namespaces.get(channel.namespace) ? channel.namespace : "other";
    const prefix = routingPrefix(channel);
    // A whole-bound namespace brings every event of it here: those of channels
    // nobody here subscribed to are dropped before any decoding (and are not
    // dead-lettered: the node with a subscriber judges them).
    if (this.deps.bindings.isWhole(channel.namespace) && !this.deps.bindings.has(prefix)) {
      this.deps.metrics.unsubscribedDropped(namespace);
      return { kind: "delivered" };
    }
    const decoded = decodeEnvelope(delivery.body, delivery, this.deps.newId);
    if (!decoded.ok) return deadLetter(this.deps, decoded.reason, decoded.message);
    const { envelope, publishedAtMs } = decoded;
    const nowMs = this.deps.clock.now();
    const frame = envelope.type === READ_SYNC_TYPE ? readFrame(channel.name, envelope.data) : eventFrame(channel.name, envelope, publishedAtMs ?? nowMs);
    if (!frame) return deadLetter(this.deps, "invalid_envelope", `${READ_SYNC_TYPE} needs data.upTo`);
    const seq = envelope.seq;
    const origin: EventOrigin | undefined = envelope.user === undefined && delivery.excludeSocket === undefined ? undefined : { user: envelope.user, excludeSocket: delivery.excludeSocket };
    const send = (): void => void this.deliver(channel.name, prefix, namespace, seq, frame, publishedAtMs, origin);
    if (seq === undefined) {
      send();
      return { kind: "delivered" };
    }
    this.repair.received(seq);
    // While the channel is repaired after a broker interruption, its live events wait for the history.
    if (this.repair.holds(channel.name)) this.repair.hold(channel.name, { seq, deliver: send });
    else send();
    return { kind: "delivered" };
  }

  /**
   * One frame of a channel to its local subscribers and to sessions
   * recovering it. A durable frame whose seq this node already delivered on
   * the channel (a relayed duplicate, or a repaired event that also came
   * live) is dropped here, once per node; returns whether it was sent.
   */
  private deliver(
    channel: string,
    prefix: string,
    namespace: string,
    seq: number | undefined,
    frame: ServerFrame & { op: "event" | "read" },
    publishedAtMs: number | undefined,
    origin?: EventOrigin,
  ): boolean {
    if (seq !== undefined) {
      const last = this.lastSeq.get(prefix);
      if (last !== undefined && seq <= last) {
        this.deps.metrics.duplicateDropped(namespace);
        return false;
      }
      this.lastSeq.set(prefix, seq);
    }
    const text = encodeServerFrame(frame);
    const recipients = this.deps.fanout.publish(channel, text, origin);
    for (const sink of this.recovering.get(channel) ?? []) sink(seq, text);
    const nowMs = this.deps.clock.now();
    const latencySeconds = publishedAtMs === undefined ? undefined : Math.max(0, nowMs - publishedAtMs) / 1000;
    this.deps.metrics.messagesSent(frame.op, namespace, recipients, latencySeconds);
    return true;
  }

  /** A stored event found by the feed repair, through the same path as a live one (its latency is not measured). */
  private deliverStored(event: StoredEvent): boolean {
    const colon = event.channel.indexOf(":");
    const namespace = event.channel.slice(0, colon);
    const prefix = routingPrefix({ namespace, id: event.channel.slice(colon + 1) });
    return this.deliver(event.channel, prefix, namespace, event.seq, storedEventFrame(event), undefined);
  }

  private announceGap(channel: string, reason: GapReason): void {
    const text = encodeServerFrame({ op: "gap", channel, reason });
    this.deps.fanout.publish(channel, text);
    for (const sink of this.recovering.get(channel) ?? []) sink(undefined, text);
    this.deps.metrics.deliveryGap(channel.slice(0, channel.indexOf(":")), reason);
  }

  /** Channels with local subscribers (or lingering), by whether the feed repair can replay them. */
  private subscribedChannels(): { durable: string[]; liveOnly: string[] } {
    const durable: string[] = [];
    const liveOnly: string[] = [];
    for (const prefix of this.deps.bindings.prefixes()) {
      const dot = prefix.indexOf(".");
      const channel = `${prefix.slice(0, dot)}:${prefix.slice(dot + 1)}`;
      if (this.deps.namespaces.get(prefix.slice(0, dot))?.durable) durable.push(channel);
      else liveOnly.push(channel);
    }
    return { durable, liveOnly };
  }
}

function eventFrame(channel: string, envelope: Envelope, publishedAtMs: number): EventFrame {
  // Same field order as a stored event's frame (storedEventFrame): seq follows id.
  return {
    op: "event",
    channel,
    id: envelope.id,
    ...(envelope.seq === undefined ? {} : { seq: envelope.seq }),
    type: envelope.type,
    data: envelope.data,
    ts: envelope.occurredAt ?? new Date(publishedAtMs).toISOString(),
  };
}

function readFrame(channel: string, data: unknown): Extract<ServerFrame, { op: "read" }> | undefined {
  const upTo = (data as { upTo?: unknown } | null)?.upTo;
  return Number.isSafeInteger(upTo) ? { op: "read", channel, upTo: upTo as number } : undefined;
}
