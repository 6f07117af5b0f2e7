import { tokenExpiryMs } from "./token.js";
import { RealtimeError } from "./types.js";

/**
 * The app's source of subscription tokens (docs/protocol.md §10):
 * the token for `channel`, or null/undefined when the channel needs none
 * (its namespace's subscribe is not "token").
 */
export type SubscriptionTokenSource = (channel: string) => Promise<string | null | undefined>;

/** Runtimes fire a timer of more than 2^31−1 ms at once; a refresh that early is harmless, so longer waits are cut to this. */
const MAX_TIMER_MS = 2_147_483_647;

export interface SubscriptionTokensDeps {
  readonly source: SubscriptionTokenSource;
  /** Refresh this long before `exp`; default a tenth of the token's remaining lifetime, at most 60 s. */
  readonly refreshBeforeExpMs: number | undefined;
  /** Sends `refresh` with `channel` and `token` on the current connection; resolves on its `ok`. */
  sendRefresh(channel: string, token: string): Promise<unknown>;
  /** A refresh that failed: the subscription ends at the old token's `exp` (the server's `unsubscribed` reason `expired`). */
  onError(error: RealtimeError): void;
}

/** One armed refresh; replaced (or removed) when the channel's token changes or the channel is forgotten. */
interface Armed {
  timer: ReturnType<typeof setTimeout>;
}

/**
 * Subscription tokens of the client's channels, over WebSocket: asked of the
 * app for every `subscribe` (so a resubscribe after a reconnect has a fresh
 * one), and refreshed on the server before each one's `exp`.
 *
 * Guarantees: at most one refresh is armed per channel; a channel forgotten
 * (unsubscribed, ended by the server) or a connection torn down while a
 * refresh awaits the app's token arms nothing more.
 */
export class SubscriptionTokens {
  private readonly armed = new Map<string, Armed>();

  constructor(private readonly deps: SubscriptionTokensDeps) {}

  /** The token to send with `subscribe`, or undefined when the channel needs none; rejects when the app's source fails. */
  async forSubscribe(channel: string): Promise<string | undefined> {
    return (await this.deps.source(channel)) ?? undefined;
  }

  /** The server accepted `token` for `channel`: refresh it before its `exp` (a token without a readable `exp` is not refreshed). */
  accepted(channel: string, token: string): void {
    this.forget(channel);
    const expiresAt = tokenExpiryMs(token);
    if (expiresAt === undefined) return;
    const remaining = expiresAt - Date.now();
    const margin = this.deps.refreshBeforeExpMs ?? Math.min(60_000, remaining / 10);
    const entry: Armed = { timer: setTimeout(() => void this.refresh(channel, entry), Math.min(MAX_TIMER_MS, Math.max(0, remaining - margin))) };
    this.armed.set(channel, entry);
  }

  /** Stops refreshing `channel`. */
  forget(channel: string): void {
    const entry = this.armed.get(channel);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    this.armed.delete(channel);
  }

  /** The connection is gone: every refresh stops (the resubscribes fetch fresh tokens). */
  clear(): void {
    for (const entry of this.armed.values()) clearTimeout(entry.timer);
    this.armed.clear();
  }

  private async refresh(channel: string, entry: Armed): Promise<void> {
    let token: string | undefined;
    try {
      token = await this.forSubscribe(channel);
      if (this.armed.get(channel) !== entry) return;
      if (token === undefined) throw new Error("the source returned no token");
    } catch (error) {
      if (this.armed.get(channel) === entry) this.deps.onError(new RealtimeError("unauthorized", `subscription token refresh failed for ${channel}`, undefined, { cause: error }));
      return;
    }
    try {
      await this.deps.sendRefresh(channel, token);
    } catch (error) {
      if (error instanceof RealtimeError && error.code === "connection_lost") return;
      if (this.armed.get(channel) === entry) this.deps.onError(error as RealtimeError);
      return;
    }
    if (this.armed.get(channel) === entry) this.accepted(channel, token);
  }
}
