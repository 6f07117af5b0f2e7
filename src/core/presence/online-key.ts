import { channelOfSubscribersKey } from "./subscribers-key.js";

/**
 * The key under which a node holds "user has a connection here" (no channel
 * is empty). It travels in the same tables, deltas and snapshots as channel
 * memberships, so a user's status is repaired exactly like a membership.
 */
export const ONLINE_KEY = "";

/** A channel membership's key: neither ONLINE_KEY nor a subscribers key (subscribers-key.ts). */
export function isMembershipKey(key: string): boolean {
  return key !== ONLINE_KEY && channelOfSubscribersKey(key) === undefined;
}
