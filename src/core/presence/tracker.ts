import { encodeServerFrame, type PresenceMember, type UserStatus } from "../../protocol/frames.js";
import type { Clock, Timer } from "../ports/clock.js";
import type { Logger } from "../ports/logger.js";
import type { Metrics } from "../ports/metrics.js";
import type { PresenceBus, PresenceBusHandler, PresenceChange, PresenceEntry, PresenceMessage } from "../ports/presence-bus.js";
import type { LocalFanout } from "../ports/session-socket.js";
import { EntryDigest } from "./digest.js";
import { FanoutThrottle } from "./fanout-throttle.js";

/** The key under which a node holds "user has a connection here" (no channel is empty). */
export const ONLINE_KEY = "";
/** Routing-key words must not carry AMQP separators or wildcards. */
const ROUTING_WORD = /^[A-Za-z0-9_-]{1,128}$/;
const DEFAULT_FLUSH_MS = 1_000;
/** Longest wait for the first snapshots after (re)connecting before the view counts as settled. */
const MAX_WARMUP_MS = 2_000;
/** Bounds of what is kept in memory for events held during warm-up and for lastSeen. */
const MAX_HELD_EVENTS = 100_000;
const MAX_LAST_SEEN = 1_000_000;

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
  readonly fanoutFlushMs?: number;
}

/** One presence change for backends, to `sobranie.events` under the reserved `presence` prefix. */
export interface PresenceBackendEvent {
  readonly routingKey: string;
  readonly type: "online" | "offline" | "join" | "leave";
  readonly data: Record<string, unknown>;
  readonly atMs: number;
}

export interface PresenceTrackerDeps {
  readonly clock: Clock;
  readonly bus: PresenceBus;
  readonly fanout: LocalFanout;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Publishes to backends; failures are the sink's to log (presence never waits on them). */
  readonly publishEvent: (event: PresenceBackendEvent) => void;
}

export interface PresenceListing {
  readonly count: number;
  readonly members: PresenceMember[];
  /** Present (true) when the channel has more than the listing limit: `members` is then empty. */
  readonly truncated?: true;
}

/** What a session and the HTTP API use. */
export interface PresenceHandle {
  /** One more connection of `user` on this node (status). */
  userConnected(user: string): void;
  userDisconnected(user: string): void;
  /** One more connection of `user` tracked in `channel` on this node. */
  track(channel: string, user: string, info: unknown): void;
  untrack(channel: string, user: string): void;
  members(channel: string): PresenceListing;
  statuses(users: readonly string[]): UserStatus[];
}

interface Peer {
  readonly node: string;
  readonly incarnation: string;
  seq: number;
  lastHeardMs: number;
  synced: boolean;
  readonly entries: Map<string, Map<string, unknown>>;
  readonly digest: EntryDigest;
  syncAskedAtMs: number | undefined;
  /** First heard while this node warmed up: its snapshot lists what was there before us, not changes. */
  readonly preexisting: boolean;
}

interface Holder {
  readonly nodes: Set<string>;
  readonly info: unknown;
}

/**
 * Cluster-wide presence, held on every node.
 *
 * - Local: channel → user → connection count on this node; changes of the
 *   first/last connection become deltas on the bus (batched per microtask).
 * - Cluster: channel → user → the nodes holding it. join/leave (and status
 *   frames) reach local subscribers only when that set turns non-empty or
 *   empty: two tabs, or two nodes, are one member.
 * - Every `heartbeatMs` a node publishes its last delta seq and a digest of
 *   its entries; a receiver that missed deltas (seq gap) or disagrees (digest)
 *   asks that node for a snapshot and applies the difference.
 * - A node silent for `ttlMs` is dead and its entries are removed everywhere;
 *   `leaving` (graceful stop) removes them at once. A node that cannot hear the
 *   bus judges nobody: peers' clocks restart when it reconnects.
 * - Backend events: exactly one node publishes them, the synced node with the
 *   lowest id, for every cluster-level transition it observes. Every node sees
 *   the same transitions per (channel, user) in the same order (one holder set,
 *   changes from each node in order), so one publisher gives one event per
 *   change, including for a dead node's members. Deciding on the node where a
 *   change happened instead would lose the offline of a user whose last two
 *   connections, on two nodes, close at the same moment (each node sees the
 *   other still holding the user).
 */
export class PresenceTracker implements PresenceBusHandler, PresenceHandle {
  private readonly local = new Map<string, Map<string, { info: unknown; count: number }>>();
  private readonly localDigest = new EntryDigest();
  private seq = 0;
  private pending: PresenceChange[] = [];
  private flushQueued = false;
  private snapshotQueued = false;
  private readonly peers = new Map<string, Peer>();
  private readonly cluster = new Map<string, Map<string, Holder>>();
  private readonly lastSeen = new Map<string, number>();
  private readonly throttle: FanoutThrottle;
  private heldEvents: PresenceBackendEvent[] = [];
  private connected = false;
  private synced = false;
  private everSynced = false;
  private stopped = false;
  private ticker: Timer | undefined;
  private warmup: Timer | undefined;

  constructor(
    private readonly options: PresenceTrackerOptions,
    private readonly deps: PresenceTrackerDeps,
  ) {
    this.throttle = new FanoutThrottle({
      clock: deps.clock,
      fanout: deps.fanout,
      perSec: options.fanoutPerSec,
      flushMs: options.fanoutFlushMs ?? DEFAULT_FLUSH_MS,
      sent: (op, channel, recipients) => deps.metrics.messagesSent(op, namespaceOf(channel), recipients, undefined),
    });
  }

  /** Starts the heartbeat; resolves once the bus is connected. */
  start(): Promise<void> {
    this.ticker ??= this.deps.clock.setInterval(() => this.tick(), this.options.heartbeatMs);
    return this.deps.bus.start(this);
  }

  /**
   * Graceful stop: pending deltas, then `leaving` so every other node removes
   * what this one still holds at once. Callers close sessions first, so their
   * leaves travel as ordinary deltas. Idempotent; the bus is stopped by its owner.
   */
  stop(): void {
    if (this.stopped) return;
    this.flush();
    this.stopped = true;
    this.ticker?.cancel();
    this.warmup?.cancel();
    this.throttle.close();
    this.deps.bus.publish({ ...this.from(), kind: "leaving" });
  }

  isLeader(): boolean {
    if (!this.synced || !this.connected) return false;
    for (const peer of this.peers.values()) if (peer.synced && peer.node < this.options.nodeId) return false;
    return true;
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
    let users = this.local.get(key);
    if (!users) this.local.set(key, (users = new Map()));
    const held = users.get(user);
    if (held) return void (held.count += 1);
    users.set(user, { info, count: 1 });
    this.localDigest.toggle(key, user, true);
    this.queueChange(info === undefined ? { op: "add", key, user } : { op: "add", key, user, info });
    this.clusterAdd(key, user, this.options.nodeId, info, this.deps.clock.now(), false);
  }

  untrack(key: string, user: string): void {
    if (this.stopped) return;
    const users = this.local.get(key);
    const held = users?.get(user);
    if (!users || !held) return;
    held.count -= 1;
    if (held.count > 0) return;
    users.delete(user);
    if (users.size === 0) this.local.delete(key);
    this.localDigest.toggle(key, user, false);
    this.queueChange({ op: "remove", key, user });
    this.clusterRemove(key, user, this.options.nodeId, this.deps.clock.now(), false);
  }

  members(channel: string): PresenceListing {
    const holders = this.cluster.get(channel);
    const count = holders?.size ?? 0;
    if (count > this.options.maxListedMembers) return { count, members: [], truncated: true };
    const members: PresenceMember[] = [];
    for (const [user, holder] of holders ?? []) members.push(holder.info === undefined ? { user } : { user, info: holder.info });
    return { count, members };
  }

  statuses(users: readonly string[]): UserStatus[] {
    const online = this.cluster.get(ONLINE_KEY);
    const nowMs = this.deps.clock.now();
    return users.map((user) => {
      if (online?.has(user)) return { user, online: true, lastSeen: iso(nowMs) };
      const seen = this.lastSeen.get(user);
      return { user, online: false, lastSeen: seen === undefined ? null : iso(seen) };
    });
  }

  // ---- PresenceBusHandler ----

  connectionChanged(connected: boolean): void {
    if (this.stopped) return;
    this.connected = connected;
    this.warmup?.cancel();
    if (!connected) {
      this.synced = false;
      return;
    }
    const nowMs = this.deps.clock.now();
    // We heard nobody while away: that says nothing about them.
    for (const peer of this.peers.values()) peer.lastHeardMs = nowMs;
    this.flush();
    this.deps.bus.publish({ ...this.from(), kind: "sync", target: "*" });
    this.publishHeartbeat();
    this.warmup = this.deps.clock.setTimeout(() => this.settle(), Math.min(this.options.heartbeatMs, MAX_WARMUP_MS));
  }

  received(message: PresenceMessage): void {
    if (this.stopped) return;
    if (message.node === this.options.nodeId) {
      if (message.incarnation !== this.options.incarnation) {
        this.deps.logger.error({ node: message.node }, "another process publishes presence with this NODE_ID");
      }
      return;
    }
    const peer = this.peerOf(message);
    if (!peer) return;
    peer.lastHeardMs = this.deps.clock.now();
    switch (message.kind) {
      case "delta": {
        if (message.seq !== peer.seq + 1) this.askSync(peer);
        for (const change of message.changes) {
          if (change.op === "add") this.peerAdd(peer, change.key, change.user, change.info, message.atMs, false);
          else this.peerRemove(peer, change.key, change.user, message.atMs);
        }
        peer.seq = Math.max(peer.seq, message.seq);
        return;
      }
      case "heartbeat":
        peer.synced = message.synced;
        if (message.seq !== peer.seq || message.digest !== peer.digest.toString()) this.askSync(peer);
        return;
      case "snapshot":
        this.replace(peer, message.entries, message.atMs);
        peer.seq = message.seq;
        peer.syncAskedAtMs = undefined;
        return;
      case "sync":
        if (message.target === this.options.nodeId || message.target === "*") this.queueSnapshot();
        return;
      case "leaving":
        return this.dropPeer(peer.node, "left");
      default: {
        const unreachable: never = message;
        return unreachable;
      }
    }
  }

  // ---- internals ----

  private tick(): void {
    if (this.stopped) return;
    this.flush();
    this.throttle.sweep();
    const nowMs = this.deps.clock.now();
    let oldestMs = nowMs;
    if (this.connected) {
      this.publishHeartbeat();
      for (const peer of [...this.peers.values()]) {
        if (nowMs - peer.lastHeardMs > this.options.ttlMs) this.dropPeer(peer.node, "dead");
        else oldestMs = Math.min(oldestMs, peer.lastHeardMs);
      }
    }
    let localMembers = 0;
    for (const [key, users] of this.local) if (key !== ONLINE_KEY) localMembers += users.size;
    let clusterMembers = 0;
    for (const [key, users] of this.cluster) if (key !== ONLINE_KEY) clusterMembers += users.size;
    this.deps.metrics.presenceState({
      localMembers,
      clusterMembers,
      onlineUsers: this.cluster.get(ONLINE_KEY)?.size ?? 0,
      nodes: this.peers.size + 1,
      heartbeatAgeSeconds: (nowMs - oldestMs) / 1000,
    });
  }

  /** The view after (re)connecting has had its chance to fill: held events go out if this node is the publisher. */
  private settle(): void {
    this.warmup = undefined;
    if (this.stopped || !this.connected) return;
    this.synced = true;
    this.everSynced = true;
    this.publishHeartbeat();
    const held = this.heldEvents;
    this.heldEvents = [];
    if (this.isLeader()) for (const event of held) this.deps.publishEvent(event);
  }

  private from(): { node: string; incarnation: string; atMs: number } {
    return { node: this.options.nodeId, incarnation: this.options.incarnation, atMs: this.deps.clock.now() };
  }

  private publishHeartbeat(): void {
    this.flush();
    this.deps.bus.publish({ ...this.from(), kind: "heartbeat", seq: this.seq, digest: this.localDigest.toString(), synced: this.synced });
  }

  private queueChange(change: PresenceChange): void {
    this.pending.push(change);
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.pending.length === 0 || this.stopped) return;
    const changes = this.pending;
    this.pending = [];
    this.seq += 1;
    this.deps.bus.publish({ ...this.from(), kind: "delta", seq: this.seq, changes });
  }

  private queueSnapshot(): void {
    if (this.snapshotQueued) return;
    this.snapshotQueued = true;
    queueMicrotask(() => {
      this.snapshotQueued = false;
      if (this.stopped) return;
      this.flush();
      const entries: PresenceEntry[] = [];
      for (const [key, users] of this.local) {
        for (const [user, held] of users) entries.push(held.info === undefined ? { key, user } : { key, user, info: held.info });
      }
      this.deps.bus.publish({ ...this.from(), kind: "snapshot", seq: this.seq, entries });
    });
  }

  private askSync(peer: Peer): void {
    const nowMs = this.deps.clock.now();
    if (peer.syncAskedAtMs !== undefined && nowMs - peer.syncAskedAtMs < this.options.heartbeatMs) return;
    peer.syncAskedAtMs = nowMs;
    this.deps.metrics.presenceResync();
    this.deps.bus.publish({ ...this.from(), kind: "sync", target: peer.node });
  }

  /** The sender's state; a new incarnation replaces the old one (its entries leave first). */
  private peerOf(message: PresenceMessage): Peer | undefined {
    const known = this.peers.get(message.node);
    if (known && known.incarnation === message.incarnation) return known;
    if (known) this.dropPeer(known.node, "restarted");
    // A node that left says so last; a stray message after it must not resurrect it.
    if (message.kind === "leaving") return undefined;
    const peer: Peer = {
      node: message.node,
      incarnation: message.incarnation,
      seq: 0,
      lastHeardMs: this.deps.clock.now(),
      synced: false,
      entries: new Map(),
      digest: new EntryDigest(),
      syncAskedAtMs: undefined,
      preexisting: !this.everSynced,
    };
    this.peers.set(peer.node, peer);
    return peer;
  }

  private dropPeer(node: string, reason: "dead" | "left" | "restarted"): void {
    const peer = this.peers.get(node);
    if (!peer) return;
    this.peers.delete(node);
    this.deps.logger.info({ peer: node, reason, entries: peer.digest.size }, "presence: node removed");
    const nowMs = this.deps.clock.now();
    for (const [key, users] of peer.entries) for (const user of users.keys()) this.clusterRemove(key, user, node, nowMs, false);
  }

  private replace(peer: Peer, entries: readonly PresenceEntry[], atMs: number): void {
    const next = new Map<string, Map<string, unknown>>();
    for (const entry of entries) {
      let users = next.get(entry.key);
      if (!users) next.set(entry.key, (users = new Map()));
      users.set(entry.user, entry.info);
    }
    for (const [key, users] of [...peer.entries]) {
      for (const user of [...users.keys()]) if (!next.get(key)?.has(user)) this.peerRemove(peer, key, user, atMs);
    }
    const quiet = peer.preexisting && !this.everSynced;
    for (const [key, users] of next) for (const [user, info] of users) this.peerAdd(peer, key, user, info, atMs, quiet);
  }

  private peerAdd(peer: Peer, key: string, user: string, info: unknown, atMs: number, quiet: boolean): void {
    let users = peer.entries.get(key);
    if (!users) peer.entries.set(key, (users = new Map()));
    if (users.has(user)) return;
    users.set(user, info);
    peer.digest.toggle(key, user, true);
    this.clusterAdd(key, user, peer.node, info, atMs, quiet);
  }

  private peerRemove(peer: Peer, key: string, user: string, atMs: number): void {
    const users = peer.entries.get(key);
    if (!users?.delete(user)) return;
    if (users.size === 0) peer.entries.delete(key);
    peer.digest.toggle(key, user, false);
    this.clusterRemove(key, user, peer.node, atMs, false);
  }

  private clusterAdd(key: string, user: string, node: string, info: unknown, atMs: number, quiet: boolean): void {
    let holders = this.cluster.get(key);
    if (!holders) this.cluster.set(key, (holders = new Map()));
    const holder = holders.get(user);
    if (holder) return void holder.nodes.add(node);
    holders.set(user, { nodes: new Set([node]), info });
    this.transition(key, user, true, info, atMs, quiet);
  }

  private clusterRemove(key: string, user: string, node: string, atMs: number, quiet: boolean): void {
    const holders = this.cluster.get(key);
    const holder = holders?.get(user);
    if (!holders || !holder?.nodes.delete(node) || holder.nodes.size > 0) return;
    holders.delete(user);
    if (holders.size === 0) this.cluster.delete(key);
    this.transition(key, user, false, holder.info, atMs, quiet);
  }

  /** (key, user) appeared in or vanished from the whole cluster. */
  private transition(key: string, user: string, present: boolean, info: unknown, atMs: number, quiet: boolean): void {
    if (key === ONLINE_KEY) {
      if (!present) this.rememberSeen(user, atMs);
      const text = encodeServerFrame({ op: "status", user, online: present, lastSeen: iso(present ? atMs : (this.lastSeen.get(user) ?? atMs)) });
      const recipients = this.deps.fanout.publish(`status:${user}`, text);
      this.deps.metrics.messagesSent("status", "status", recipients, undefined);
    } else {
      this.throttle.change(key, present ? "join" : "leave", user, info);
    }
    if (!quiet) this.backendEvent(key, user, present, info, atMs);
  }

  private backendEvent(key: string, user: string, present: boolean, info: unknown, atMs: number): void {
    let event: PresenceBackendEvent;
    if (key === ONLINE_KEY) {
      if (!ROUTING_WORD.test(user)) return;
      const type = present ? "online" : "offline";
      event = { routingKey: `presence.status.${user}.${type}`, type, data: { user, online: present, lastSeen: iso(atMs) }, atMs };
    } else {
      const colon = key.indexOf(":");
      const type = present ? "join" : "leave";
      const data: Record<string, unknown> = { channel: key, user };
      if (info !== undefined) data.info = info;
      event = { routingKey: `presence.${key.slice(0, colon)}.${key.slice(colon + 1)}.${type}`, type, data, atMs };
    }
    if (!this.synced) {
      if (this.heldEvents.length < MAX_HELD_EVENTS) this.heldEvents.push(event);
      return;
    }
    if (this.isLeader()) this.deps.publishEvent(event);
  }

  private rememberSeen(user: string, atMs: number): void {
    this.lastSeen.delete(user);
    this.lastSeen.set(user, atMs);
    if (this.lastSeen.size > MAX_LAST_SEEN) {
      const oldest = this.lastSeen.keys().next().value;
      if (oldest !== undefined) this.lastSeen.delete(oldest);
    }
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function namespaceOf(channel: string): string {
  return channel.slice(0, Math.max(0, channel.indexOf(":")));
}
