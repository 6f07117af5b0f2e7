import { SobranieError } from "@sobranie/protocol/errors";

/** What revocations match a token by (docs/protocol.md §11): shared by connection and subscription tokens. */
export interface TokenIdentity {
  readonly userId: string;
  /** Token expiry, ms since the epoch. */
  readonly expiresAtMs: number;
  /** The `jti` claim: what a `revoke` with `tokenId` names. */
  readonly tokenId?: string | undefined;
  /** The `iat` claim in ms: what a `revoke` with `issuedBefore` compares (a token without it counts as issued before). */
  readonly issuedAtMs?: number | undefined;
}

/** Who a connection belongs to, taken from a verified connection JWT (docs/protocol.md §4). */
export interface Principal extends TokenIdentity {
  /** Subscribe patterns from the `channels` claim: `room:7`, `room:*`. */
  readonly channelPatterns: readonly string[];
  /** Presence info from the `info` claim (at most 1 KiB of JSON). */
  readonly info: unknown;
}

/** A verified subscription token (docs/protocol.md §10): the right of one user to one channel until `expiresAtMs`. */
export interface SubscriptionGrant extends TokenIdentity {
  /** The `channel` claim, exactly as the token names it. */
  readonly channel: string;
}

/**
 * Verifies the two kinds of token. The kinds are told apart by the `channel`
 * claim, which only a subscription token has: each method refuses the other
 * kind, so neither can stand in for the other.
 */
export interface Authenticator {
  /** A connection token: resolves the principal, or rejects with `AuthenticationError`. */
  verify(token: string): Promise<Principal>;
  /**
   * Decides at once where the token's key allows it: the principal, or a
   * thrown `AuthenticationError`; `undefined` when only `verify` can decide
   * (a key that must be fetched). The WebSocket upgrade uses it to upgrade
   * synchronously (see src/http/user-token-gate.ts).
   */
  verifyNow?(token: string): Principal | undefined;
  /** A subscription token: resolves the grant, or rejects with `AuthenticationError`. */
  verifySubscription(token: string): Promise<SubscriptionGrant>;
  /** `verifySubscription` decided at once where the key allows it, as `verifyNow` does; `undefined` when only the async path can decide. */
  verifySubscriptionNow?(token: string): SubscriptionGrant | undefined;
}

export class AuthenticationError extends SobranieError {
  override readonly name = "AuthenticationError";
  readonly code = "unauthorized";
  readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
