import type { RevokeCommand, UnsubscribeCommand } from "@sobranie/protocol/control";
import type { TokenIdentity } from "./ports/authenticator.js";
import type { Revocation } from "./ports/revocation-store.js";

export interface RevocationLimits {
  /**
   * The longest a token lives (TOKEN_MAX_LIFETIME_MS): how long a `jti`
   * revocation without the token's `exp`, and a time-based one past its
   * time, are kept. A token living longer would be accepted again after that.
   */
  readonly maxTokenLifetimeMs: number;
  /** Entries held in memory at most; past it the oldest are dropped (and logged). */
  readonly maxEntries: number;
}

/**
 * This node's view of every revocation that still matters, in memory: what
 * connect, `refresh` and `subscribe` check a token against. Fed by control
 * commands and by the store at start-up (and after every broker reconnect,
 * for commands missed meanwhile). Connection and subscription tokens are
 * matched alike, by user, `jti` and `iat`. Memory is bounded by expiry (`prune`) and
 * by `maxEntries`.
 */
export class Revocations {
  /** By `kind\0user\0subject`. Map order is insertion order: the first entry is the oldest. */
  private readonly entries = new Map<string, Revocation>();

  constructor(private readonly limits: RevocationLimits) {}

  get size(): number {
    return this.entries.size;
  }

  /** The stored form of a `revoke`: its expiry decided once, here. */
  static ofRevoke(command: RevokeCommand, nowMs: number, limits: Pick<RevocationLimits, "maxTokenLifetimeMs">): Revocation {
    if ("tokenId" in command) {
      return { kind: "token", userId: command.user, tokenId: command.tokenId, expiresAtMs: command.expiresAt ?? nowMs + limits.maxTokenLifetimeMs };
    }
    return { kind: "issued_before", userId: command.user, issuedBeforeMs: command.issuedBefore, expiresAtMs: command.issuedBefore + limits.maxTokenLifetimeMs };
  }

  /** The stored form of an `unsubscribe`: tokens issued before now may not subscribe to the channel again. */
  static ofUnsubscribe(command: UnsubscribeCommand, nowMs: number, limits: Pick<RevocationLimits, "maxTokenLifetimeMs">): Revocation {
    return { kind: "channel", userId: command.user, channel: command.channel, issuedBeforeMs: nowMs, expiresAtMs: nowMs + limits.maxTokenLifetimeMs };
  }

  /** Adds (or widens) an entry; returns how many old entries were dropped to stay within `maxEntries`. */
  add(revocation: Revocation, nowMs: number): number {
    if (revocation.expiresAtMs <= nowMs) return 0;
    const key = revocationKey(revocation);
    const known = this.entries.get(key);
    this.entries.set(key, known === undefined ? revocation : widestRevocation(known, revocation));
    let dropped = 0;
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.limits.maxEntries) break;
      this.entries.delete(oldest);
      dropped += 1;
    }
    return dropped;
  }

  /** Whether a verified token may no longer be used: its `jti` is revoked, or it was issued before its user's cut-off. */
  isRevoked(principal: TokenIdentity, nowMs: number): boolean {
    if (principal.tokenId !== undefined && this.live(`token\u0000${principal.userId}\u0000${principal.tokenId}`, nowMs)) return true;
    const before = this.live(`issued_before\u0000${principal.userId}\u0000`, nowMs);
    return before !== undefined && Revocations.matches(before, principal);
  }

  /** Whether this token may no longer subscribe to `channel` (the user was removed from it after the token was issued). */
  isChannelRevoked(principal: TokenIdentity, channel: string, nowMs: number): boolean {
    const entry = this.live(`channel\u0000${principal.userId}\u0000${channel}`, nowMs);
    return entry !== undefined && Revocations.matches(entry, principal);
  }

  /**
   * Whether `revocation` covers this token. Time-based kinds compare `iat`
   * (whole seconds): a token without `iat` cannot prove it is newer and is
   * covered; one issued in the same second as the cut-off, but after it,
   * counts as before.
   */
  static matches(revocation: Revocation, principal: TokenIdentity): boolean {
    if (revocation.userId !== principal.userId) return false;
    if (revocation.kind === "token") return principal.tokenId === revocation.tokenId;
    return principal.issuedAtMs === undefined || principal.issuedAtMs < revocation.issuedBeforeMs;
  }

  /** Drops what stopped mattering; returns how many entries went. */
  prune(nowMs: number): number {
    return pruneExpired(this.entries, nowMs);
  }

  private live(key: string, nowMs: number): Revocation | undefined {
    const revocation = this.entries.get(key);
    return revocation !== undefined && revocation.expiresAtMs > nowMs ? revocation : undefined;
  }
}

/** What identifies an entry beside its user and kind: the token id, the channel, or nothing (`issued_before`). */
export function revocationSubject(revocation: Revocation): string {
  return revocation.kind === "token" ? revocation.tokenId : revocation.kind === "channel" ? revocation.channel : "";
}

/**
 * The entry's identity as one string (the store's primary key: kind, user,
 * subject). Neither the kind nor a `sub` holds NUL, and the subject comes
 * last: the key is unambiguous.
 */
export function revocationKey(revocation: Revocation): string {
  return `${revocation.kind}\u0000${revocation.userId}\u0000${revocationSubject(revocation)}`;
}

/** Two entries of one key merged: the later cut-off and the later expiry (what the store's upsert keeps too). */
export function widestRevocation(known: Revocation, added: Revocation): Revocation {
  const expiresAtMs = Math.max(known.expiresAtMs, added.expiresAtMs);
  if (known.kind === "token" || added.kind === "token") return { ...added, expiresAtMs };
  return { ...added, issuedBeforeMs: Math.max(known.issuedBeforeMs, added.issuedBeforeMs), expiresAtMs };
}

/** Deletes the entries that stopped mattering by `nowMs` (expiresAtMs <= nowMs); returns how many went. */
export function pruneExpired(entries: Map<string, Revocation>, nowMs: number): number {
  let pruned = 0;
  for (const [key, revocation] of entries) {
    if (revocation.expiresAtMs > nowMs) continue;
    entries.delete(key);
    pruned += 1;
  }
  return pruned;
}
