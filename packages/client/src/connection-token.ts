import type { Timers } from "./timers.js";
import { tokenExpiryMs, type TokenSource } from "./token.js";
import { RealtimeError } from "./types.js";

export interface ConnectionTokenDeps {
  readonly source: TokenSource;
  /** Refresh this long before `exp`; default a tenth of the token's remaining lifetime, at most 60 s. */
  readonly refreshBeforeExpMs: number | undefined;
  /** The connection's timers: a refresh armed for a connection is cancelled with it. */
  readonly timers: Timers;
  /** A refresh fetched `token`: hand it to the current connection (which then arms the next refresh), or reopen with it. */
  refreshed(token: string): Promise<void> | void;
  onError(error: RealtimeError): void;
}

/**
 * The connection token: asked of the app at the first connect, again after
 * the server rejected it (close 4001) and before its `exp`. A fixed string
 * is used as is and never refreshed; a token without a readable `exp` is not
 * refreshed either (the server's 4001 then asks for a new one).
 */
export class ConnectionToken {
  private value: string | undefined;
  private stale = false;

  constructor(private readonly deps: ConnectionTokenDeps) {}

  /** A token was obtained at least once (the client has tried to connect). */
  get fetched(): boolean {
    return this.value !== undefined;
  }

  /** False for a fixed string: nothing can replace it once the server rejects it. */
  get renewable(): boolean {
    return typeof this.deps.source !== "string";
  }

  /** The token to connect with: the one held, or a new one from the app when none is held or it was marked stale. */
  async current(): Promise<string> {
    const source = this.deps.source;
    if (typeof source === "string") return (this.value = source);
    if (this.value === undefined || this.stale) {
      this.value = await source();
      this.stale = false;
    }
    return this.value;
  }

  /** The server rejected the token: the next `current()` asks the app for a new one. */
  markStale(): void {
    this.stale = true;
  }

  /** Schedules a refresh before the token's `exp` (a connection's `welcome`, or its refresh accepted). */
  armRefresh(): void {
    const source = this.deps.source;
    const expiresAt = this.value === undefined ? undefined : tokenExpiryMs(this.value);
    if (typeof source === "string" || expiresAt === undefined) return;
    const remaining = expiresAt - Date.now();
    const margin = this.deps.refreshBeforeExpMs ?? Math.min(60_000, remaining / 10);
    this.deps.timers.later(() => void this.refresh(source), Math.max(0, remaining - margin));
  }

  private async refresh(source: () => Promise<string>): Promise<void> {
    let token: string;
    try {
      token = await source();
    } catch (error) {
      // The old token still works until exp; the server's 4001 then makes us try again.
      return this.deps.onError(new RealtimeError("unauthorized", "token refresh failed", undefined, { cause: error }));
    }
    this.value = token;
    return this.deps.refreshed(token);
  }
}
