/** Who a connection belongs to, taken from a verified JWT (CONTRACT §4). */
export interface Principal {
  readonly userId: string;
  /** Subscribe patterns from the `channels` claim: `room:7`, `room:*`. */
  readonly channelPatterns: readonly string[];
  /** Presence info from the `info` claim (at most 1 KiB of JSON). */
  readonly info: unknown;
  /** Token expiry, ms since the epoch. */
  readonly expiresAtMs: number;
  /** The `jti` claim: what a `revoke` with `tokenId` names. */
  readonly tokenId?: string | undefined;
  /** The `iat` claim in ms: what a `revoke` with `issuedBefore` compares (a token without it counts as issued before). */
  readonly issuedAtMs?: number | undefined;
}

export interface Authenticator {
  /** Resolves the principal, or rejects with `AuthenticationError`. */
  verify(token: string): Promise<Principal>;
  /**
   * Decides at once where the token's key allows it: the principal, or a
   * thrown `AuthenticationError`; `undefined` when only `verify` can decide
   * (a key that must be fetched). The WebSocket upgrade uses it to upgrade
   * synchronously (see UwsServer).
   */
  verifyNow?(token: string): Principal | undefined;
}

export class AuthenticationError extends Error {
  override readonly name = "AuthenticationError";
  readonly code = "unauthorized";
  readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
