import {
  checkLimit,
  checkSeq,
  inboxChannel,
  namespaceOf,
  normalizeOccurredAt,
  retentionLimit,
} from "../../core/event-store-input.js";
import {
  type AppendOutcome,
  type EventStore,
  type HistoryPage,
  type Inbox,
  type NewEvent,
  type RetentionPolicy,
  type StoredEvent,
  StoreUnavailableError,
} from "../../core/ports/event-store.js";
import type { Revocation } from "../../core/ports/revocation-store.js";
import { pruneExpired, revocationKey, widestRevocation } from "../../core/revocations.js";

/**
 * The event store inside the process: the test double for core logic, held
 * to the same contract suite as PostgresEventStore (PostgreSQL and PGlite).
 *
 * Mirrors the database where callers could notice: `data` goes through JSON
 * (what jsonb keeps), stored events are frozen (no caller can change history
 * behind the store's back), `occurredAt` comes back normalized, and calls
 * before `start()` or after `stop()` reject with StoreUnavailableError.
 */
export class MemoryEventStore implements EventStore {
  private ready = false;
  private lastSeq = 0;
  private readonly byId = new Map<string, StoredEvent>();
  /** Per channel, ascending by seq (appends only ever add larger seqs). */
  private readonly byChannel = new Map<string, StoredEvent[]>();
  /** Highest seq retention removed, per channel. */
  private readonly watermarks = new Map<string, number>();
  private readonly readMarks = new Map<string, number>();
  private readonly lastSeen = new Map<string, number>();
  /** By revocationKey: kind, user and subject, as the table's primary key. */
  private readonly revocations = new Map<string, Revocation>();

  async start(): Promise<void> {
    this.ready = true;
  }

  async stop(): Promise<void> {
    this.ready = false;
  }

  isReady(): boolean {
    return this.ready;
  }

  async append(events: readonly NewEvent[]): Promise<AppendOutcome[]> {
    this.ensureReady();
    // Build every new event first, so a bad one rejects the batch with nothing stored.
    const fresh = new Map<string, StoredEvent>();
    const planned: Array<{ id: string; isNew: boolean }> = [];
    let nextSeq = this.lastSeq;
    for (const event of events) {
      if (this.byId.has(event.id) || fresh.has(event.id)) {
        planned.push({ id: event.id, isNew: false });
        continue;
      }
      fresh.set(event.id, freeze({ ...toStored(event), seq: ++nextSeq }));
      planned.push({ id: event.id, isNew: true });
    }
    for (const stored of fresh.values()) {
      this.byId.set(stored.id, stored);
      const list = this.byChannel.get(stored.channel);
      if (list) list.push(stored);
      else this.byChannel.set(stored.channel, [stored]);
    }
    this.lastSeq = nextSeq;
    return planned.map(({ id, isNew }) => ({ event: this.byId.get(id) as StoredEvent, duplicate: !isNew }));
  }

  async history(channel: string, afterSeq: number, limit: number): Promise<HistoryPage> {
    this.ensureReady();
    namespaceOf(channel);
    checkSeq("afterSeq", afterSeq);
    checkLimit(limit);
    return {
      events: this.after(channel, afterSeq, limit),
      complete: (this.watermarks.get(channel) ?? 0) <= afterSeq,
    };
  }

  async lastEvent(channel: string): Promise<StoredEvent | undefined> {
    this.ensureReady();
    namespaceOf(channel);
    return this.byChannel.get(channel)?.at(-1);
  }

  async latestSeq(): Promise<number> {
    this.ensureReady();
    let latest = 0;
    for (const list of this.byChannel.values()) latest = Math.max(latest, list.at(-1)?.seq ?? 0);
    return latest;
  }

  async prune(policies: readonly RetentionPolicy[], nowMs: number): Promise<number> {
    this.ensureReady();
    // Every policy is checked before anything is removed: a bad one removes nothing.
    const rules = policies.map((policy) => {
      const maxAgeMs = retentionLimit("maxAgeMs", policy.maxAgeMs);
      return {
        namespace: policy.namespace,
        cutoffMs: maxAgeMs === undefined ? Number.NEGATIVE_INFINITY : nowMs - maxAgeMs,
        maxPerChannel: retentionLimit("maxPerChannel", policy.maxPerChannel) ?? Number.POSITIVE_INFINITY,
      };
    });
    let removed = 0;
    for (const rule of rules) {
      for (const [channel, list] of this.byChannel) {
        if (namespaceOf(channel) !== rule.namespace) continue;
        const countCut = Math.max(0, list.length - rule.maxPerChannel);
        const kept: StoredEvent[] = [];
        let highestRemoved = this.watermarks.get(channel) ?? 0;
        list.forEach((event, index) => {
          if (index >= countCut && Date.parse(event.occurredAt) >= rule.cutoffMs) {
            kept.push(event);
            return;
          }
          this.byId.delete(event.id);
          highestRemoved = Math.max(highestRemoved, event.seq);
          removed += 1;
        });
        if (kept.length === list.length) continue;
        this.watermarks.set(channel, highestRemoved);
        if (kept.length === 0) this.byChannel.delete(channel);
        else this.byChannel.set(channel, kept);
      }
    }
    return removed;
  }

  async inbox(userId: string, afterSeq: number, limit: number): Promise<Inbox> {
    this.ensureReady();
    checkSeq("afterSeq", afterSeq);
    checkLimit(limit);
    const channel = inboxChannel(userId);
    namespaceOf(channel);
    const readUpTo = this.readMarks.get(userId) ?? 0;
    const list = this.byChannel.get(channel) ?? [];
    return {
      events: this.after(channel, afterSeq, limit),
      unread: list.length - firstIndexAfter(list, readUpTo),
      readUpTo,
    };
  }

  async markRead(userId: string, upToSeq: number): Promise<number> {
    this.ensureReady();
    checkSeq("upToSeq", upToSeq);
    const channel = inboxChannel(userId);
    namespaceOf(channel);
    const newest = Math.max(this.byChannel.get(channel)?.at(-1)?.seq ?? 0, this.watermarks.get(channel) ?? 0);
    const mark = Math.max(this.readMarks.get(userId) ?? 0, Math.min(upToSeq, newest));
    this.readMarks.set(userId, mark);
    return mark;
  }

  private after(channel: string, afterSeq: number, limit: number): StoredEvent[] {
    const list = this.byChannel.get(channel) ?? [];
    const start = firstIndexAfter(list, afterSeq);
    return list.slice(start, start + limit);
  }

  async saveLastSeen(seen: ReadonlyMap<string, number>): Promise<void> {
    this.ensureReady();
    for (const [user, atMs] of seen) {
      // Milliseconds, as timestamptz keeps them.
      const kept = Math.trunc(atMs);
      this.lastSeen.set(user, Math.max(this.lastSeen.get(user) ?? kept, kept));
    }
  }

  async loadLastSeen(users: readonly string[]): Promise<Map<string, number>> {
    this.ensureReady();
    const found = new Map<string, number>();
    for (const user of users) {
      const atMs = this.lastSeen.get(user);
      if (atMs !== undefined) found.set(user, atMs);
    }
    return found;
  }

  async saveRevocation(revocation: Revocation): Promise<void> {
    this.ensureReady();
    const key = revocationKey(revocation);
    const known = this.revocations.get(key);
    // Milliseconds, as timestamptz keeps them; the later cut-off and expiry win, as the upsert's greatest().
    const added = { ...revocation, expiresAtMs: Math.trunc(revocation.expiresAtMs) };
    this.revocations.set(key, known === undefined ? added : widestRevocation(known, added));
  }

  async loadRevocations(nowMs: number): Promise<Revocation[]> {
    this.ensureReady();
    return [...this.revocations.values()].filter((revocation) => revocation.expiresAtMs > nowMs);
  }

  async pruneRevocations(nowMs: number): Promise<number> {
    this.ensureReady();
    return pruneExpired(this.revocations, nowMs);
  }

  private ensureReady(): void {
    if (!this.ready) throw new StoreUnavailableError("memory event store is not started");
  }
}

/** Index of the first event with seq > afterSeq in an ascending list (binary search). */
function firstIndexAfter(list: readonly StoredEvent[], afterSeq: number): number {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((list[mid] as StoredEvent).seq <= afterSeq) low = mid + 1;
    else high = mid;
  }
  return low;
}

function toStored(event: NewEvent): Omit<StoredEvent, "seq"> {
  namespaceOf(event.channel);
  const stored = {
    id: event.id,
    channel: event.channel,
    type: event.type,
    data: JSON.parse(JSON.stringify(event.data ?? null)) as unknown,
    occurredAt: normalizeOccurredAt(event.occurredAt),
  };
  return event.user === undefined ? stored : { ...stored, user: event.user };
}

function freeze<T>(value: T): T {
  if (value !== null && typeof value === "object") {
    for (const child of Object.values(value)) freeze(child);
    Object.freeze(value);
  }
  return value;
}
