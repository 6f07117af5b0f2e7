import type { PresenceMember, UserStatus } from "@sobranie/protocol/frames";

export interface PresenceListing {
  readonly count: number;
  readonly members: PresenceMember[];
  /** Present (true) when the channel has more than the listing limit: `members` is then empty. */
  readonly truncated?: true;
}

/**
 * What a session and the HTTP API use of presence. Calls count connections:
 * a user tracked twice (two tabs) is one member until untracked twice.
 */
export interface PresenceHandle {
  /** One more connection of `user` on this node (status). */
  userConnected(user: string): void;
  userDisconnected(user: string): void;
  /** One more connection of `user` tracked in `channel` on this node. */
  track(channel: string, user: string, info: unknown): void;
  untrack(channel: string, user: string): void;
  /**
   * One more subscriber of `channel` on this node, counted cluster-wide: a
   * session (by its id) whose wire shows subscriber counts
   * (SessionWire.countsSubscribers) subscribed it. Counted subscribers are
   * replicated, repaired and removed with a dead node like members; they are
   * nobody's members.
   */
  countSubscriber(channel: string, subscriber: string): void;
  uncountSubscriber(channel: string, subscriber: string): void;
  /** The channel's counted subscribers anywhere in the cluster. */
  subscriberCount(channel: string): number;
  /** Every channel with counted subscribers anywhere in the cluster, with their count. */
  subscribedChannels(): Array<{ channel: string; count: number }>;
  members(channel: string): PresenceListing;
  /** Every presence channel with members anywhere in the cluster, with its member count. */
  channels(): Array<{ channel: string; count: number }>;
  /** Online users have lastSeen now; offline ones the latest time known here or in the store. */
  statuses(users: readonly string[]): Promise<UserStatus[]>;
}
