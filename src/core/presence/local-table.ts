import type { PresenceChange, PresenceEntry } from "@sobranie/protocol/presence";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { PresenceBus } from "../ports/presence-bus.js";
import { EntryDigest } from "./digest.js";
import { isMembershipKey } from "./online-key.js";

export interface LocalPresenceDeps {
  readonly clock: Clock;
  readonly bus: PresenceBus;
  /** The sender fields of a message this node publishes, stamped now. */
  readonly from: () => { node: string; incarnation: string; atMs: number };
}

interface Held {
  readonly info: unknown;
  count: number;
}

/**
 * This node's own presence: channel (or ONLINE_KEY) → user → connection
 * count here. Only a user's first connection under a key and the close of
 * their last one are changes; they leave as one `delta` per event-loop turn,
 * numbered by `seq` from 1 without gaps, stamped with the time of the batch's
 * first change (which is also the time its transitions count as happened at,
 * on every node). Heartbeats carry the last seq and the digest of the
 * entries; a `sync` request is answered with one snapshot per microtask,
 * after the pending delta. Nothing is published once closed.
 */
export class LocalPresence {
  private readonly entries = new Map<string, Map<string, Held>>();
  private readonly digest = new EntryDigest();
  private seq = 0;
  private pending: PresenceChange[] = [];
  private pendingAtMs = 0;
  private flushQueued = false;
  private snapshotQueued = false;
  private closed = false;

  constructor(private readonly deps: LocalPresenceDeps) {}

  /** One more connection; returns the time the user's first one here counts as made at, undefined if they had one already. */
  add(key: string, user: string, info: unknown): number | undefined {
    let users = this.entries.get(key);
    if (!users) this.entries.set(key, (users = new Map()));
    const held = users.get(user);
    if (held) return void (held.count += 1);
    users.set(user, { info, count: 1 });
    this.digest.toggle(key, user, true);
    return this.queueChange(info === undefined ? { op: "add", key, user } : { op: "add", key, user, info });
  }

  /** One connection fewer; returns the time the user's last one here counts as closed at, undefined if others remain (or none was held). */
  remove(key: string, user: string): number | undefined {
    const users = this.entries.get(key);
    const held = users?.get(user);
    if (!users || !held) return undefined;
    held.count -= 1;
    if (held.count > 0) return undefined;
    users.delete(user);
    if (users.size === 0) this.entries.delete(key);
    this.digest.toggle(key, user, false);
    return this.queueChange({ op: "remove", key, user });
  }

  /** Channel memberships held here (online status and subscribers not counted), for metrics. */
  memberCount(): number {
    let members = 0;
    for (const [key, users] of this.entries) if (isMembershipKey(key)) members += users.size;
    return members;
  }

  /** Sends the pending changes now, as one delta. */
  flush(): void {
    if (this.pending.length === 0 || this.closed) return;
    const changes = this.pending;
    this.pending = [];
    this.seq += 1;
    this.deps.bus.publish({ ...this.deps.from(), atMs: this.pendingAtMs, kind: "delta", seq: this.seq, changes });
  }

  /** After the pending delta, so the seq it carries covers every change made. */
  publishHeartbeat(synced: boolean): void {
    this.flush();
    this.deps.bus.publish({ ...this.deps.from(), kind: "heartbeat", seq: this.seq, digest: this.digest.toString(), synced });
  }

  queueSnapshot(): void {
    if (this.snapshotQueued) return;
    this.snapshotQueued = true;
    queueMicrotask(() => {
      this.snapshotQueued = false;
      if (this.closed) return;
      this.flush();
      const entries: PresenceEntry[] = [];
      for (const [key, users] of this.entries) {
        for (const [user, held] of users) entries.push(held.info === undefined ? { key, user } : { key, user, info: held.info });
      }
      this.deps.bus.publish({ ...this.deps.from(), kind: "snapshot", seq: this.seq, entries });
    });
  }

  /** Sends the pending delta, then publishes nothing more. */
  close(): void {
    this.flush();
    this.closed = true;
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
}
