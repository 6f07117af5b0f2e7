import type { PresenceEntry, PresenceMessage } from "@sobranie/protocol/presence";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Metrics } from "../ports/metrics.js";
import type { ClusterView } from "./cluster-view.js";
import { EntryDigest } from "./digest.js";

/**
 * Heartbeat intervals without hearing its own heartbeat back after which a
 * node counts itself deaf: its bus connection is up but nothing arrives (a
 * hung broker node, a stuck queue). One interval is normal; two missed in a
 * row are not.
 */
const DEAF_AFTER_HEARTBEATS = 2;

export interface PeerTableOptions {
  /** Node heartbeat interval; also the least time between two sync requests to one peer. */
  readonly heartbeatMs: number;
  /** A node silent this long is dead. */
  readonly ttlMs: number;
}

export interface PeerTableDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Where every peer entry added or removed goes. */
  readonly cluster: ClusterView;
  /** Publishes a `sync` asking `node` for a snapshot. */
  readonly requestSnapshot: (node: string) => void;
  /** This node's view has settled at least once since it started. */
  readonly everSynced: () => boolean;
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

/**
 * The other nodes as this node hears them: per peer its incarnation, last
 * delta seq, entries (mirrored into the cluster view) and their digest, and
 * when it was last heard.
 *
 * - A receiver that missed deltas (seq gap) or disagrees with a heartbeat
 *   (seq or digest) asks that node for a snapshot, at most once per
 *   heartbeat interval, and applies the difference.
 * - A new incarnation replaces the old one (its entries leave first); a
 *   message after `leaving` does not resurrect the node.
 * - A node silent for `ttlMs` is dead and its entries are removed; `leaving`
 *   (graceful stop) removes them at once. A node that cannot hear the bus
 *   judges nobody: disconnected, or connected but not hearing its own
 *   heartbeats come back (a hung broker node keeps the connection open and
 *   delivers nothing); peers' clocks restart when it hears again, so users on
 *   nodes that are alive are never announced as leaving by a deaf node.
 * - The snapshots of peers first heard during this node's first warm-up are
 *   quiet: what was there before us raises no backend event.
 */
export class PeerTable {
  private readonly peers = new Map<string, Peer>();
  /** When this node last heard its own heartbeat (or connected); undefined while disconnected. */
  private heardSelfAtMs: number | undefined;
  private deaf = false;

  constructor(
    private readonly options: PeerTableOptions,
    private readonly deps: PeerTableDeps,
  ) {}

  get size(): number {
    return this.peers.size;
  }

  /** Some peer has an id below `node` (it publishes backend events rather than `node`). */
  hasNodeBelow(node: string): boolean {
    for (const peer of this.peers.values()) if (peer.node < node) return true;
    return false;
  }

  /** The bus (re)connected: we heard nobody while away, which says nothing about them. */
  busConnected(): void {
    const nowMs = this.deps.clock.now();
    for (const peer of this.peers.values()) peer.lastHeardMs = nowMs;
    this.heardSelfAtMs = nowMs;
    this.deaf = false;
  }

  busDisconnected(): void {
    this.heardSelfAtMs = undefined;
  }

  /** Our own message came back: the bus delivers. After a deaf spell, peers' silence meanwhile says nothing about them. */
  heardSelf(): void {
    const nowMs = this.deps.clock.now();
    if (this.deaf) {
      this.deaf = false;
      for (const peer of this.peers.values()) peer.lastHeardMs = nowMs;
      this.deps.logger.info({}, "presence: hearing the bus again");
    }
    this.heardSelfAtMs = nowMs;
  }

  /** True when our own heartbeats stopped coming back while the connection stays up. */
  isDeaf(nowMs: number): boolean {
    const deaf = this.heardSelfAtMs === undefined || nowMs - this.heardSelfAtMs > DEAF_AFTER_HEARTBEATS * this.options.heartbeatMs;
    if (deaf && !this.deaf) this.deps.logger.warn({ silentMs: nowMs - (this.heardSelfAtMs ?? nowMs) }, "presence: our own heartbeats do not come back; judging no peer until they do");
    this.deaf = deaf;
    return deaf;
  }

  /**
   * Drops the peers silent for over `ttlMs` when `judgeSilence`; returns when
   * the longest-silent remaining peer was last heard (`nowMs` if none).
   */
  sweep(nowMs: number, judgeSilence: boolean): number {
    let oldestMs = nowMs;
    for (const peer of [...this.peers.values()]) {
      if (judgeSilence && nowMs - peer.lastHeardMs > this.options.ttlMs) this.drop(peer.node, "dead");
      else oldestMs = Math.min(oldestMs, peer.lastHeardMs);
    }
    return oldestMs;
  }

  /** A message from another node (`sync` requests are the caller's to answer). */
  received(message: PresenceMessage): void {
    const peer = this.peerOf(message);
    if (!peer) return;
    peer.lastHeardMs = this.deps.clock.now();
    switch (message.kind) {
      case "delta": {
        if (message.seq !== peer.seq + 1) this.askSync(peer);
        for (const change of message.changes) {
          if (change.op === "add") this.add(peer, change.key, change.user, change.info, message.atMs, false);
          else this.remove(peer, change.key, change.user, message.atMs);
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
        return;
      case "leaving":
        return this.drop(peer.node, "left");
      default: {
        const unreachable: never = message;
        return unreachable;
      }
    }
  }

  private askSync(peer: Peer): void {
    const nowMs = this.deps.clock.now();
    if (peer.syncAskedAtMs !== undefined && nowMs - peer.syncAskedAtMs < this.options.heartbeatMs) return;
    peer.syncAskedAtMs = nowMs;
    this.deps.metrics.presenceResync();
    this.deps.requestSnapshot(peer.node);
  }

  /** The sender's state; a new incarnation replaces the old one (its entries leave first). */
  private peerOf(message: PresenceMessage): Peer | undefined {
    const known = this.peers.get(message.node);
    if (known && known.incarnation === message.incarnation) return known;
    if (known) this.drop(known.node, "restarted");
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
      preexisting: !this.deps.everSynced(),
    };
    this.peers.set(peer.node, peer);
    return peer;
  }

  private drop(node: string, reason: "dead" | "left" | "restarted"): void {
    const peer = this.peers.get(node);
    if (!peer) return;
    this.peers.delete(node);
    this.deps.logger.info({ peer: node, reason, entries: peer.digest.size }, "presence: node removed");
    const nowMs = this.deps.clock.now();
    for (const [key, users] of peer.entries) for (const user of users.keys()) this.deps.cluster.remove(key, user, node, nowMs);
  }

  private replace(peer: Peer, entries: readonly PresenceEntry[], atMs: number): void {
    const next = new Map<string, Map<string, unknown>>();
    for (const entry of entries) {
      let users = next.get(entry.key);
      if (!users) next.set(entry.key, (users = new Map()));
      users.set(entry.user, entry.info);
    }
    for (const [key, users] of [...peer.entries]) {
      for (const user of [...users.keys()]) if (!next.get(key)?.has(user)) this.remove(peer, key, user, atMs);
    }
    const quiet = peer.preexisting && !this.deps.everSynced();
    for (const [key, users] of next) for (const [user, info] of users) this.add(peer, key, user, info, atMs, quiet);
  }

  private add(peer: Peer, key: string, user: string, info: unknown, atMs: number, quiet: boolean): void {
    let users = peer.entries.get(key);
    if (!users) peer.entries.set(key, (users = new Map()));
    if (users.has(user)) return;
    users.set(user, info);
    peer.digest.toggle(key, user, true);
    this.deps.cluster.add(key, user, peer.node, info, atMs, quiet);
  }

  private remove(peer: Peer, key: string, user: string, atMs: number): void {
    const users = peer.entries.get(key);
    if (!users?.delete(user)) return;
    if (users.size === 0) peer.entries.delete(key);
    peer.digest.toggle(key, user, false);
    this.deps.cluster.remove(key, user, peer.node, atMs);
  }
}
