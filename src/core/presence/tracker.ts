import type { UserStatus } from "@sobranie/protocol/frames";
import type { PresenceMessage } from "@sobranie/protocol/presence";
import type { Clock, Timer } from "@sobranie/protocol/runtime/clock";
import type { LastSeenStore } from "../ports/last-seen-store.js";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Metrics } from "../ports/metrics.js";
import type { PresenceBus, PresenceBusHandler } from "../ports/presence-bus.js";
import type { LocalFanout } from "../ports/session-socket.js";
import { LateTick } from "@sobranie/protocol/runtime/late-tick";
import { ClusterView } from "./cluster-view.js";
import { EventLeadership, type PresenceBackendEvent } from "./event-leadership.js";
import { LastSeenTimes } from "./last-seen.js";
import { DEFAULT_LAST_SEEN_WRITER, type LastSeenWriterOptions } from "./last-seen-writer.js";
import { LocalPresence } from "./local-table.js";
import { ONLINE_KEY } from "./online-key.js";
import { PeerTable } from "./peers.js";
import type { PresenceHandle, PresenceListing } from "./presence-handle.js";
import { SubscriberFanout } from "./subscriber-fanout.js";
import { subscribersKey } from "./subscribers-key.js";

const DEFAULT_FLUSH_MS = 1_000;
const DEFAULT_SUBSCRIBER_COUNT_MS = 1_000;
/** Longest wait for the first snapshots after (re)connecting before the view counts as settled. */
const MAX_WARMUP_MS = 2_000;

export interface PresenceTrackerOptions {
  readonly nodeId: string;
  /** Unique per process start: a restarted node with the same id is told apart from its old self. */
  readonly incarnation: string;
  /** Node heartbeat interval. */
  readonly heartbeatMs: number;
  /** A node silent this long is dead. */
  readonly ttlMs: number;
  /** `presence` answers counts only above this many members. */
  readonly maxListedMembers: number;
  /** join/leave frames per channel per second before they are coalesced. */
  readonly fanoutPerSec: number;
  /** join/leave deliveries (frames × local subscribers) per channel per second before changes are held (PRESENCE_FANOUT_DELIVERIES_PER_SEC). */
  readonly fanoutDeliveriesPerSec: number;
  readonly fanoutFlushMs?: number;
  /** A channel's subscriber count is shown to its subscribers at most this often. */
  readonly subscriberCountMs?: number;
  readonly lastSeenWriter?: LastSeenWriterOptions;
}

export interface PresenceTrackerDeps {
  readonly clock: Clock;
  readonly bus: PresenceBus;
  readonly fanout: LocalFanout;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Publishes to backends; failures are the sink's to log (presence never waits on them). */
  readonly publishEvent: (event: PresenceBackendEvent) => void;
  /**
   * Where lastSeen survives restarts (PostgreSQL). Written by the node that
   * publishes backend events, at each offline, in batches; read by `statuses`
   * for users this node has not seen leave. Absent: lastSeen lives in memory only.
   */
  readonly lastSeenStore?: LastSeenStore | undefined;
  /** Shows a channel's counted subscribers to this node's sockets whose wire shows them (ChannelWires.publishToWires); absent: not shown. */
  readonly showSubscriberCount?: (channel: string, count: number) => void;
}

/**
 * Cluster-wide presence, held on every node: this node's connections
 * (LocalPresence) and every peer's (PeerTable) make up the cluster view
 * (ClusterView); each cluster-level transition reaches lastSeen
 * (LastSeenTimes), this node's subscribers (SubscriberFanout) and the
 * backend-event publisher (EventLeadership), in that order.
 *
 * - Every `heartbeatMs` a node publishes its last delta seq and a digest of
 *   its entries, and judges its peers' silence, unless the tick runs late
 *   (LateTick) or the node cannot hear the bus.
 * - After (re)connecting a node asks every node for a snapshot; its view
 *   counts as settled one heartbeat later (at most MAX_WARMUP_MS), and only
 *   a settled node publishes backend events.
 * - Once stopped (after its `leaving`) it publishes nothing more and ignores
 *   what it receives.
 */
export class PresenceTracker implements PresenceBusHandler, PresenceHandle {
  private readonly local: LocalPresence;
  private readonly cluster: ClusterView;
  private readonly peers: PeerTable;
  private readonly leadership: EventLeadership;
  private readonly lastSeen: LastSeenTimes;
  private readonly subscribers: SubscriberFanout;
  private readonly tickTiming: LateTick;
  private connected = false;
  private stopped = false;
  private ticker: Timer | undefined;
  private warmup: Timer | undefined;

  constructor(
    private readonly options: PresenceTrackerOptions,
    private readonly deps: PresenceTrackerDeps,
  ) {
    this.local = new LocalPresence({ clock: deps.clock, bus: deps.bus, from: () => this.from() });
    this.cluster = new ClusterView((key, user, present, info, atMs, quiet) => this.transition(key, user, present, info, atMs, quiet));
    this.peers = new PeerTable(options, {
      ...deps,
      cluster: this.cluster,
      requestSnapshot: (node) => deps.bus.publish({ ...this.from(), kind: "sync", target: node }),
      everSynced: () => this.leadership.wasEverSynced,
    });
    this.lastSeen = new LastSeenTimes(options.lastSeenWriter ?? DEFAULT_LAST_SEEN_WRITER, { ...deps, store: deps.lastSeenStore });
    this.leadership = new EventLeadership({
      nodeId: options.nodeId,
      connected: () => this.connected,
      hasNodeBelow: (node) => this.peers.hasNodeBelow(node),
      publishEvent: deps.publishEvent,
      lastSeen: this.lastSeen,
    });
    this.subscribers = new SubscriberFanout(
      {
        perSec: options.fanoutPerSec,
        deliveriesPerSec: options.fanoutDeliveriesPerSec,
        flushMs: options.fanoutFlushMs ?? DEFAULT_FLUSH_MS,
        subscriberCountMs: options.subscriberCountMs ?? DEFAULT_SUBSCRIBER_COUNT_MS,
      },
      { ...deps, count: (key) => this.cluster.count(key), showSubscriberCount: deps.showSubscriberCount ?? (() => undefined) },
    );
    this.tickTiming = new LateTick(options.heartbeatMs, deps.clock.now());
  }

  /** Starts the heartbeat; resolves once the bus is connected. */
  start(): Promise<void> {
    this.ticker ??= this.deps.clock.setInterval(() => this.tick(), this.options.heartbeatMs);
    return this.deps.bus.start(this);
  }

  /**
   * Graceful stop: pending deltas, then `leaving` so every other node removes
   * what this one still holds at once. Callers close sessions first, so their
   * leaves travel as ordinary deltas. Resolves once waiting lastSeen times
   * are written (or failed to be). Idempotent; the bus is stopped by its owner.
   */
  async stop(): Promise<void> {
    if (!this.stopped) {
      this.local.close();
      this.stopped = true;
      this.ticker?.cancel();
      this.warmup?.cancel();
      this.subscribers.close();
      this.deps.bus.publish({ ...this.from(), kind: "leaving" });
    }
    await this.lastSeen.stop();
  }

  /** The bus is connected: this node's presence reaches the others and theirs reaches it. */
  isConnected(): boolean {
    return this.connected && !this.stopped;
  }

  isLeader(): boolean {
    return this.leadership.isLeader();
  }

  // ---- PresenceHandle ----

  userConnected(user: string): void {
    this.track(ONLINE_KEY, user, undefined);
  }

  userDisconnected(user: string): void {
    this.untrack(ONLINE_KEY, user);
  }

  track(key: string, user: string, info: unknown): void {
    if (this.stopped) return;
    const atMs = this.local.add(key, user, info);
    if (atMs !== undefined) this.cluster.add(key, user, this.options.nodeId, info, atMs, false);
  }

  untrack(key: string, user: string): void {
    if (this.stopped) return;
    const atMs = this.local.remove(key, user);
    if (atMs !== undefined) this.cluster.remove(key, user, this.options.nodeId, atMs);
  }

  countSubscriber(channel: string, subscriber: string): void {
    this.track(subscribersKey(channel), subscriber, undefined);
  }

  uncountSubscriber(channel: string, subscriber: string): void {
    this.untrack(subscribersKey(channel), subscriber);
  }

  subscriberCount(channel: string): number {
    return this.cluster.count(subscribersKey(channel));
  }

  subscribedChannels(): Array<{ channel: string; count: number }> {
    return this.cluster.subscribedChannels();
  }

  members(channel: string): PresenceListing {
    return this.cluster.members(channel, this.options.maxListedMembers);
  }

  channels(): Array<{ channel: string; count: number }> {
    return this.cluster.channels();
  }

  statuses(users: readonly string[]): Promise<UserStatus[]> {
    return this.lastSeen.statuses(users, (user) => this.cluster.has(ONLINE_KEY, user));
  }

  // ---- PresenceBusHandler ----

  connectionChanged(connected: boolean): void {
    if (this.stopped) return;
    this.connected = connected;
    this.warmup?.cancel();
    if (!connected) {
      this.leadership.unsettle();
      this.peers.busDisconnected();
      return;
    }
    this.peers.busConnected();
    this.local.flush();
    this.deps.bus.publish({ ...this.from(), kind: "sync", target: "*" });
    this.publishHeartbeat();
    this.warmup = this.deps.clock.setTimeout(() => this.settle(), Math.min(this.options.heartbeatMs, MAX_WARMUP_MS));
  }

  received(message: PresenceMessage): void {
    if (this.stopped) return;
    if (message.node === this.options.nodeId) {
      if (message.incarnation !== this.options.incarnation) {
        this.deps.logger.error({ node: message.node }, "another process publishes presence with this NODE_ID");
      } else {
        this.peers.heardSelf();
      }
      return;
    }
    this.peers.received(message);
    if (message.kind === "sync" && (message.target === this.options.nodeId || message.target === "*")) this.local.queueSnapshot();
  }

  // ---- internals ----

  private tick(): void {
    if (this.stopped) return;
    this.local.flush();
    this.subscribers.sweep();
    const nowMs = this.deps.clock.now();
    let oldestMs = nowMs;
    // A late tick (event-loop stall) has not read the heartbeats that came
    // meanwhile, and a deaf node hears nobody: no peer is judged in either.
    const late = this.tickTiming.late(nowMs);
    const judgeSilence = this.connected && !this.peers.isDeaf(nowMs) && !late;
    if (this.connected) {
      this.publishHeartbeat();
      oldestMs = this.peers.sweep(nowMs, judgeSilence);
    }
    this.deps.metrics.presenceState({
      localMembers: this.local.memberCount(),
      clusterMembers: this.cluster.memberCount(),
      onlineUsers: this.cluster.count(ONLINE_KEY),
      nodes: this.peers.size + 1,
      heartbeatAgeSeconds: (nowMs - oldestMs) / 1000,
    });
  }

  /** The view after (re)connecting has had its chance to fill: held events go out if this node is the publisher. */
  private settle(): void {
    this.warmup = undefined;
    if (this.stopped || !this.connected) return;
    this.leadership.settle();
    this.publishHeartbeat();
    this.leadership.releaseHeld();
  }

  private from(): { node: string; incarnation: string; atMs: number } {
    return { node: this.options.nodeId, incarnation: this.options.incarnation, atMs: this.deps.clock.now() };
  }

  private publishHeartbeat(): void {
    this.local.publishHeartbeat(this.leadership.isSynced);
  }

  /** (key, user) appeared in or vanished from the whole cluster: local subscribers, lastSeen and backends hear of it. */
  private transition(key: string, user: string, present: boolean, info: unknown, atMs: number, quiet: boolean): void {
    if (key === ONLINE_KEY && !present) this.lastSeen.remember(user, atMs);
    this.subscribers.transition(key, user, present, info, atMs);
    if (!quiet) this.leadership.transition(key, user, present, info, atMs, this.cluster.count(key));
  }
}
