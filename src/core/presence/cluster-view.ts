import type { PresenceMember } from "@sobranie/protocol/frames";
import { isMembershipKey } from "./online-key.js";
import type { PresenceListing } from "./presence-handle.js";
import { channelOfSubscribersKey } from "./subscribers-key.js";

/** Called when (key, user) appeared in or vanished from the whole cluster, after the view changed (so `count(key)` already includes it); `quiet`: no backend event for it. */
export type ClusterTransition = (key: string, user: string, present: boolean, info: unknown, atMs: number, quiet: boolean) => void;

interface Holder {
  readonly nodes: Set<string>;
  /** What the first node to hold the user gave: later holders do not change it. */
  readonly info: unknown;
}

/**
 * The cluster view: channel (or ONLINE_KEY, or a subscribers key) → user →
 * the nodes holding it,
 * this one included. A transition is reported only when that set turns
 * non-empty or empty: two tabs, or two nodes, are one member. Adding a node
 * that already holds the user, or removing one that does not, changes
 * nothing and reports nothing.
 */
export class ClusterView {
  private readonly holders = new Map<string, Map<string, Holder>>();

  constructor(private readonly onTransition: ClusterTransition) {}

  add(key: string, user: string, node: string, info: unknown, atMs: number, quiet: boolean): void {
    let users = this.holders.get(key);
    if (!users) this.holders.set(key, (users = new Map()));
    const holder = users.get(user);
    if (holder) return void holder.nodes.add(node);
    users.set(user, { nodes: new Set([node]), info });
    this.onTransition(key, user, true, info, atMs, quiet);
  }

  remove(key: string, user: string, node: string, atMs: number): void {
    const users = this.holders.get(key);
    const holder = users?.get(user);
    if (!users || !holder?.nodes.delete(node) || holder.nodes.size > 0) return;
    users.delete(user);
    if (users.size === 0) this.holders.delete(key);
    this.onTransition(key, user, false, holder.info, atMs, false);
  }

  has(key: string, user: string): boolean {
    return this.holders.get(key)?.has(user) ?? false;
  }

  /** Users held under `key` anywhere in the cluster. */
  count(key: string): number {
    return this.holders.get(key)?.size ?? 0;
  }

  /** Every channel with at least one member anywhere in the cluster, with its member count. */
  channels(): Array<{ channel: string; count: number }> {
    const channels: Array<{ channel: string; count: number }> = [];
    for (const [key, users] of this.holders) if (isMembershipKey(key)) channels.push({ channel: key, count: users.size });
    return channels;
  }

  /** Every channel with counted subscribers (subscribers-key.ts) anywhere in the cluster, with their count. */
  subscribedChannels(): Array<{ channel: string; count: number }> {
    const channels: Array<{ channel: string; count: number }> = [];
    for (const [key, users] of this.holders) {
      const channel = channelOfSubscribersKey(key);
      if (channel !== undefined) channels.push({ channel, count: users.size });
    }
    return channels;
  }

  /** Channel memberships cluster-wide (online status and subscribers not counted), for metrics. */
  memberCount(): number {
    let members = 0;
    for (const [key, users] of this.holders) if (isMembershipKey(key)) members += users.size;
    return members;
  }

  /** Counts only (members empty, truncated) above `maxListed` members. */
  members(channel: string, maxListed: number): PresenceListing {
    const users = this.holders.get(channel);
    const count = users?.size ?? 0;
    if (count > maxListed) return { count, members: [], truncated: true };
    const members: PresenceMember[] = [];
    for (const [user, holder] of users ?? []) members.push(holder.info === undefined ? { user } : { user, info: holder.info });
    return { count, members };
  }
}
