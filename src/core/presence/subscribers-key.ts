/**
 * The keys under which nodes hold "this connection subscribes the channel",
 * for the wires that show cluster-wide subscriber counts
 * (SessionWire.countsSubscribers): `#<channel>`, one entry per subscribing
 * session. They travel in the same tables, deltas and snapshots as channel
 * memberships, so a count is repaired, and a dead node's subscribers
 * removed, exactly like a membership. No channel name starts with `#`, so
 * these keys never mix with a channel's members, and ONLINE_KEY is empty.
 */
const SUBSCRIBERS_KEY_PREFIX = "#";

export function subscribersKey(channel: string): string {
  return `${SUBSCRIBERS_KEY_PREFIX}${channel}`;
}

/** The channel whose subscribers `key` holds; undefined for a membership key (or ONLINE_KEY). */
export function channelOfSubscribersKey(key: string): string | undefined {
  return key.startsWith(SUBSCRIBERS_KEY_PREFIX) ? key.slice(SUBSCRIBERS_KEY_PREFIX.length) : undefined;
}
