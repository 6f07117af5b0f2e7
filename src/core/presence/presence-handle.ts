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
  members(channel: string): PresenceListing;
  /** Online users have lastSeen now; offline ones the latest time known here or in the store. */
  statuses(users: readonly string[]): Promise<UserStatus[]>;
}
