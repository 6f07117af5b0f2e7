import { encodeServerFrame, type PresenceMember, type UserStatus } from "../../protocol/frames.js";
import type { Clock, Timer } from "../ports/clock.js";
import type { LastSeenStore } from "../ports/last-seen-store.js";
import type { Logger } from "../ports/logger.js";
import type { Metrics } from "../ports/metrics.js";
import type { PresenceChange, PresenceEntry, PresenceMessage } from "../../protocol/presence.js";
import type { PresenceBus, PresenceBusHandler } from "../ports/presence-bus.js";
import type { LocalFanout } from "../ports/session-socket.js";
import { EntryDigest } from "./digest.js";
import { LateTick } from "../late-tick.js";
import { FanoutThrottle } from "./fanout-throttle.js";
import { DEFAULT_LAST_SEEN_WRITER, LastSeenWriter, type LastSeenWriterOptions } from "./last-seen-writer.js";

/** The key under which a node holds "user has a connection here" (no channel is empty). */
export const ONLINE_KEY = "";
/** Routing-key words must not carry AMQP separators or wildcards. */
const ROUTING_WORD = /^[A-Za-z0-9_-]{1,128}$/;
const DEFAULT_FLUSH_MS = 1_000;
/** Longest wait for the first snapshots after (re)connecting before the view counts as settled. */
const MAX_WARMUP_MS = 2_000;
/**
 * Heartbeat intervals without hearing its own heartbeat back after which a
 * node counts itself deaf: its bus connection is up but nothing arrives (a
 * hung broker node, a stuck queue). One interval is normal; two missed in a
 * row are not.
 */
const DEAF_AFTER_HEARTBEATS = 2;
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
  /** join/leave deliveries (frames × local subscribers) per channel per second before changes are held (PRESENCE_FANOUT_DELIVERIES_PER_SEC). */
  readonly fanoutDeliveriesPerSec: number;
  readonly fanoutFlushMs?: number;
  readonly lastSeenWriter?: LastSeenWriterOptions;
}

/** One presence change for backends, to `sobranie.events` under the reserved `presence` prefix. */
export interface PresenceBackendEvent {
  readonly routingKey: string;
  readonly type: "online" | "offline" | "join" | "leave";
  readonly user: string;
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
  /**
   * Where lastSeen survives restarts (PostgreSQL). Written by the node that
   * publishes backend events, at each offline, in batches; read by `statuses`
   * for users this node has not seen leave. Absent: lastSeen lives in memory only.
   */
  readonly lastSeenStore?: LastSeenStore | undefined;
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
  /** Online users have lastSeen now; offline ones the latest time known here or in the store. */
  statuses(users: readonly string[]): Promise<UserStatus[]>;
}

interface Peer {
  readonly node: string;
  readonly incarnation: string;
  seq: number;
  lastHeardMs: number;
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
 *   first/last connection become deltas on the bus (batched per event-loop turn).
 * - Cluster: channel → user → the nodes holding it. join/leave (and status
 *   frames) reach local subscribers only when that set turns non-empty or
 *   empty: two tabs, or two nodes, are one member.
 * - Every `heartbeatMs` a node publishes its last delta seq and a digest of
 *   its entries; a receiver that missed deltas (seq gap) or disagrees (digest)
 *   asks that node for a snapshot and applies the difference.
 * - A node silent for `ttlMs` is dead and its entries are removed everywhere;
 *   `leaving` (graceful stop) removes them at once. A node that cannot hear the
 *   bus judges nobody: disconnected, or connected but not hearing its own
 *   heartbeats come back (a hung broker node keeps the connection open and
 *   delivers nothing); peers' clocks restart when it hears again, so users on
 *   nodes that are alive are never announced as leaving by a deaf node.
 * - Backend events: exactly one node publishes them, the node with the lowest
 *   id of those it knows, once settled, for every cluster-level transition it
 *   observes. A lower node still warming up counts: it holds what it sees
 *   meanwhile and publishes it when it settles (deferring only to synced
 *   peers let two cold-starting nodes both publish their held events). Every node sees
 *   the same transitions per (channel, user) in the same order (one holder set,
 *   changes from each node in order), so one publisher gives one event per
 *   change, including for a dead node's members. Deciding on the node where a
 *   change happened instead would lose the offline of a user whose last two
 *   connections, on two nodes, close at the same moment (each node sees the
 *   other still holding the user).
 * - lastSeen: every node remembers the offline times it observed (bounded);
 *   the backend-event publisher also writes each one to the store in batches,
 *   so it survives restarts and reaches nodes started later.
 */
export class PresenceTracker implements PresenceBusHandler, PresenceHandle {
  private readonly local = new Map<string, Map<string, { info: unknown; count: number }>>();
  private readonly localDigest = new EntryDigest();
  private seq = 0;
  private pending: PresenceChange[] = [];
  /** When the first pending change happened: the delta's time, and the local transitions' (one time on every node). */
  private pendingAtMs = 0;
  private flushQueued = false;
  private snapshotQueued = false;
  private readonly peers = new Map<string, Peer>();
  private readonly cluster = new Map<string, Map<string, Holder>>();
  private readonly lastSeen = new Map<string, number>();
  private readonly throttle: FanoutThrottle;
  private readonly lastSeenWriter: LastSeenWriter | undefined;
  private readonly tickTiming: LateTick;
  private heldEvents: PresenceBackendEvent[] = [];
  private connected = false;
  /** When this node last heard its own heartbeat (or connected); undefined while disconnected. */
  private heardSelfAtMs: number | undefined;
  private deaf = false;
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
      deliveriesPerSec: options.fanoutDeliveriesPerSec,
      flushMs: options.fanoutFlushMs ?? DEFAULT_FLUSH_MS,
      count: (channel) => this.cluster.get(channel)?.size ?? 0,
      sent: (op, channel, recipients) => deps.metrics.messagesSent(op, namespaceOf(channel), recipients, undefined),
    });
    this.tickTiming = new LateTick(options.heartbeatMs, deps.clock.now());
    const store = deps.lastSeenStore;
    this.lastSeenWriter = store && new LastSeenWriter(options.lastSeenWriter ?? DEFAULT_LAST_SEEN_WRITER, { ...deps, store });
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
      this.flush();
      this.stopped = true;
      this.ticker?.cancel();
      this.warmup?.cancel();
      this.throttle.close();
      this.deps.bus.publish({ ...this.from(), kind: "leaving" });
    }
    await this.lastSeenWriter?.stop();
  }

  /** The bus is connected: this node's presence reaches the others and theirs reaches it. */
  isConnected(): boolean {
    return this.connected && !this.stopped;
  }

  isLeader(): boolean {
    if (!this.synced || !this.connected) return false;
    for (const peer of this.peers.values()) if (peer.node < this.options.nodeId) return false;
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
    const atMs = this.queueChange(info === undefined ? { op: "add", key, user } : { op: "add", key, user, info });
    this.clusterAdd(key, user, this.options.nodeId, info, atMs, false);
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
    const atMs = this.queueChange({ op: "remove", key, user });
    this.clusterRemove(key, user, this.options.nodeId, atMs, false);
  }

  members(channel: string): PresenceListing {
    const holders = this.cluster.get(channel);
    const count = holders?.size ?? 0;
    if (count > this.options.maxListedMembers) return { count, members: [], truncated: true };
    const members: PresenceMember[] = [];
    for (const [user, holder] of holders ?? []) members.push(holder.info === undefined ? { user } : { user, info: holder.info });
    return { count, members };
  }

  async statuses(users: readonly string[]): Promise<UserStatus[]> {
    const offline = users.filter((user) => !this.cluster.get(ONLINE_KEY)?.has(user));
    const stored = await this.loadLastSeen(offline);
    const online = this.cluster.get(ONLINE_KEY);
    const nowMs = this.deps.clock.now();
    return users.map((user) => {
      if (online?.has(user)) return { user, online: true, lastSeen: iso(nowMs) };
      const seen = Math.max(this.lastSeen.get(user) ?? -Infinity, stored.get(user) ?? -Infinity);
      return { user, online: false, lastSeen: Number.isFinite(seen) ? iso(seen) : null };
    });
  }

  // ---- PresenceBusHandler ----

  connectionChanged(connected: boolean): void {
    if (this.stopped) return;
    this.connected = connected;
    this.warmup?.cancel();
    if (!connected) {
      this.synced = false;
      this.heardSelfAtMs = undefined;
      return;
    }
    const nowMs = this.deps.clock.now();
    // We heard nobody while away: that says nothing about them.
    for (const peer of this.peers.values()) peer.lastHeardMs = nowMs;
    this.heardSelfAtMs = nowMs;
    this.deaf = false;
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
      } else {
        this.heardSelf();
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

  /** Our own message came back: the bus delivers. After a deaf spell, peers' silence meanwhile says nothing about them. */
  private heardSelf(): void {
    const nowMs = this.deps.clock.now();
    if (this.deaf) {
      this.deaf = false;
      for (const peer of this.peers.values()) peer.lastHeardMs = nowMs;
      this.deps.logger.info({}, "presence: hearing the bus again");
    }
    this.heardSelfAtMs = nowMs;
  }

  /** True when our own heartbeats stopped coming back while the connection stays up. */
  private checkDeaf(nowMs: number): boolean {
    const deaf = this.heardSelfAtMs === undefined || nowMs - this.heardSelfAtMs > DEAF_AFTER_HEARTBEATS * this.options.heartbeatMs;
    if (deaf && !this.deaf) this.deps.logger.warn({ silentMs: nowMs - (this.heardSelfAtMs ?? nowMs) }, "presence: our own heartbeats do not come back; judging no peer until they do");
    this.deaf = deaf;
    return deaf;
  }

  private tick(): void {
    if (this.stopped) return;
    this.flush();
    this.throttle.sweep();
    const nowMs = this.deps.clock.now();
    let oldestMs = nowMs;
    // A late tick (event-loop stall) has not read the heartbeats that came
    // meanwhile, and a deaf node hears nobody: no peer is judged in either.
    const late = this.tickTiming.late(nowMs);
    const judgeSilence = this.connected && !this.checkDeaf(nowMs) && !late;
    if (this.connected) {
      this.publishHeartbeat();
      for (const peer of [...this.peers.values()]) {
        if (judgeSilence && nowMs - peer.lastHeardMs > this.options.ttlMs) this.dropPeer(peer.node, "dead");
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
    if (this.isLeader()) for (const event of held) this.emit(event);
  }

  /** The store's times; if it is unreachable, what this node remembers still answers. */
  private async loadLastSeen(users: readonly string[]): Promise<Map<string, number>> {
    const store = this.deps.lastSeenStore;
    if (!store || users.length === 0) return new Map();
    try {
      return await store.loadLastSeen(users);
    } catch (error) {
      this.deps.logger.warn({ err: error }, "lastSeen not read from the store: answering from memory");
      return new Map();
    }
  }

  /** This node is the publisher: the event goes to backends, an offline's time to the store. */
  private emit(event: PresenceBackendEvent): void {
    this.deps.publishEvent(event);
    if (event.type === "offline") this.lastSeenWriter?.record(event.user, event.atMs);
  }

  private from(): { node: string; incarnation: string; atMs: number } {
    return { node: this.options.nodeId, incarnation: this.options.incarnation, atMs: this.deps.clock.now() };
  }

  private publishHeartbeat(): void {
    this.flush();
    this.deps.bus.publish({ ...this.from(), kind: "heartbeat", seq: this.seq, digest: this.localDigest.toString(), synced: this.synced });
  }

  /** Returns the time the change counts as happened at (its batch's). */
  private queueChange(change: PresenceChange): number {
    if (this.pending.length === 0) this.pendingAtMs = this.deps.clock.now();
    this.pending.push(change);
    if (this.flushQueued) return this.pendingAtMs;
    this.flushQueued = true;
    // After the event loop's current I/O phase, not the current callback: a
    // connect storm's changes (one uWS callback each) leave as one delta.
    setImmediate(() => {
      this.flushQueued = false;
      this.flush();
    });
    return this.pendingAtMs;
  }

  private flush(): void {
    if (this.pending.length === 0 || this.stopped) return;
    const changes = this.pending;
    this.pending = [];
    this.seq += 1;
    this.deps.bus.publish({ ...this.from(), atMs: this.pendingAtMs, kind: "delta", seq: this.seq, changes });
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
      event = { routingKey: `presence.status.${user}.${type}`, type, user, data: { user, online: present, lastSeen: iso(atMs) }, atMs };
    } else {
      const colon = key.indexOf(":");
      const type = present ? "join" : "leave";
      const data: Record<string, unknown> = { channel: key, user };
      if (info !== undefined) data.info = info;
      event = { routingKey: `presence.${key.slice(0, colon)}.${key.slice(colon + 1)}.${type}`, type, user, data, atMs };
    }
    if (!this.synced) {
      if (this.heldEvents.length < MAX_HELD_EVENTS) this.heldEvents.push(event);
      return;
    }
    if (this.isLeader()) this.emit(event);
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
