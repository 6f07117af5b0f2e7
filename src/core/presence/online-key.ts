/**
 * The key under which a node holds "user has a connection here" (no channel
 * is empty). It travels in the same tables, deltas and snapshots as channel
 * memberships, so a user's status is repaired exactly like a membership.
 */
export const ONLINE_KEY = "";
