import type { UserStatus } from "@sobranie/protocol/frames";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { LastSeenStore } from "../ports/last-seen-store.js";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Metrics } from "../ports/metrics.js";
import { LastSeenWriter, type LastSeenWriterOptions } from "./last-seen-writer.js";

/** Users whose offline time is kept in memory; beyond this the longest-known are forgotten first. */
const MAX_LAST_SEEN = 1_000_000;

export interface LastSeenDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Where lastSeen survives restarts; absent: it lives in memory only. */
  readonly store?: LastSeenStore | undefined;
}

/** A lastSeen time as frames, events and the HTTP API spell it. */
export function lastSeenIso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * lastSeen: every node remembers the offline times it observed (bounded);
 * the backend-event publisher also writes each one to the store in batches
 * (LastSeenWriter), so it survives restarts and reaches nodes started later.
 * A status answer takes the later of memory and store; if the store is
 * unreachable, what this node remembers still answers.
 */
export class LastSeenTimes {
  private readonly seen = new Map<string, number>();
  private readonly writer: LastSeenWriter | undefined;

  constructor(writerOptions: LastSeenWriterOptions, private readonly deps: LastSeenDeps) {
    const store = deps.store;
    this.writer = store && new LastSeenWriter(writerOptions, { ...deps, store });
  }

  /** Every node, at each offline it observes. */
  remember(user: string, atMs: number): void {
    this.seen.delete(user);
    this.seen.set(user, atMs);
    if (this.seen.size > MAX_LAST_SEEN) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }

  /** The backend-event publisher only: queues the time for the store. */
  persist(user: string, atMs: number): void {
    this.writer?.record(user, atMs);
  }

  /** Online users (as `isOnline` says once the store has answered) have lastSeen now; offline ones the latest time known here or in the store. */
  async statuses(users: readonly string[], isOnline: (user: string) => boolean): Promise<UserStatus[]> {
    const stored = await this.load(users.filter((user) => !isOnline(user)));
    const nowMs = this.deps.clock.now();
    return users.map((user) => {
      if (isOnline(user)) return { user, online: true, lastSeen: lastSeenIso(nowMs) };
      const seen = Math.max(this.seen.get(user) ?? -Infinity, stored.get(user) ?? -Infinity);
      return { user, online: false, lastSeen: Number.isFinite(seen) ? lastSeenIso(seen) : null };
    });
  }

  /** Resolves once waiting times are written (or failed to be). */
  async stop(): Promise<void> {
    await this.writer?.stop();
  }

  /** The store's times; if it is unreachable, what this node remembers still answers. */
  private async load(users: readonly string[]): Promise<Map<string, number>> {
    const store = this.deps.store;
    if (!store || users.length === 0) return new Map();
    try {
      return await store.loadLastSeen(users);
    } catch (error) {
      this.deps.logger.warn({ err: error }, "lastSeen not read from the store: answering from memory");
      return new Map();
    }
  }
}
