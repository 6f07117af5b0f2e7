import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type AppendOutcome,
  type EventStore,
  type NewEvent,
  type StoredEvent,
  StoreUnavailableError,
} from "../../src/core/ports/event-store.js";

/**
 * What each adapter's test file provides: a started store on fresh, isolated
 * storage (its own schema), a way to simulate a process restart on the same
 * storage, and cleanup that removes the storage.
 */
import type { Revocation } from "../../src/core/ports/revocation-store.js";

export interface EventStoreFixture {
  readonly store: EventStore;
  /** Stops `store` and starts another store on the same storage (migrations run again). */
  reopen(): Promise<EventStore>;
  cleanup(): Promise<void>;
}

const BASE_MS = Date.parse("2026-11-25T10:00:00.000Z");
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

function event(id: string, channel: string, overrides: Partial<NewEvent> = {}): NewEvent {
  return {
    id,
    channel,
    type: "notification.created",
    data: { n: id },
    occurredAt: new Date(BASE_MS).toISOString(),
    ...overrides,
  };
}

function at(offsetMs: number): string {
  return new Date(BASE_MS + offsetMs).toISOString();
}

function seqs(events: readonly StoredEvent[]): number[] {
  return events.map((stored) => stored.seq);
}

function ids(events: readonly StoredEvent[]): string[] {
  return events.map((stored) => stored.id);
}

function seqOf(outcomes: readonly AppendOutcome[], index: number): number {
  const outcome = outcomes[index];
  if (!outcome) throw new Error(`no outcome at ${index}`);
  return outcome.event.seq;
}

export function eventStoreContract(name: string, make: () => Promise<EventStoreFixture>): void {
  describe(`EventStore contract: ${name}`, () => {
    let fixture: EventStoreFixture;
    let store: EventStore;

    beforeEach(async () => {
      fixture = await make();
      store = fixture.store;
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    it("assigns strictly increasing seqs across batches and channels, in input order", async () => {
      const first = await store.append([event("a1", "room:1"), event("a2", "room:2"), event("a3", "user:7")]);
      const second = await store.append([event("b1", "room:2"), event("b2", "room:1")]);
      const all = [...first, ...second];
      expect(all.map((outcome) => outcome.duplicate)).toEqual([false, false, false, false, false]);
      const assigned = all.map((outcome) => outcome.event.seq);
      for (let index = 1; index < assigned.length; index += 1) {
        expect(assigned[index]).toBeGreaterThan(assigned[index - 1] as number);
      }
      expect(all.map((outcome) => outcome.event.id)).toEqual(["a1", "a2", "a3", "b1", "b2"]);
      expect(ids((await store.history("room:1", 0, 10)).events)).toEqual(["a1", "b2"]);
    });

    it("latestSeq is 0 on an empty store, then the highest seq stored, and a duplicate does not move it", async () => {
      expect(await store.latestSeq()).toBe(0);
      const stored = await store.append([event("l1", "room:1"), event("l2", "user:7")]);
      expect(await store.latestSeq()).toBe(stored[1]!.event.seq);
      await store.append([event("l1", "room:1")]);
      expect(await store.latestSeq()).toBe(stored[1]!.event.seq);
      const later = await store.append([event("l3", "room:2")]);
      expect(await store.latestSeq()).toBe(later[0]!.event.seq);
    });

    it("stores a re-delivered id once and returns the first copy with duplicate=true", async () => {
      const first = await store.append([event("x", "room:1", { data: { version: 1 } })]);
      const again = await store.append([
        event("y", "room:1"),
        event("x", "room:1", { data: { version: 2 } }),
        event("z", "room:1"),
      ]);
      expect(again.map((outcome) => outcome.duplicate)).toEqual([false, true, false]);
      expect(again[1]?.event).toEqual(first[0]?.event);
      expect(again[1]?.event.data).toEqual({ version: 1 });
      expect(seqOf(again, 2)).toBeGreaterThan(seqOf(again, 0));
      const page = await store.history("room:1", 0, 10);
      expect(ids(page.events)).toEqual(["x", "y", "z"]);
      expect(page.events[0]?.data).toEqual({ version: 1 });
    });

    it("stores an id repeated within one batch once: the first occurrence wins", async () => {
      const outcomes = await store.append([
        event("d", "room:1", { data: { copy: "first" } }),
        event("e", "room:1"),
        event("d", "room:1", { data: { copy: "second" } }),
      ]);
      expect(outcomes.map((outcome) => outcome.duplicate)).toEqual([false, false, true]);
      expect(seqOf(outcomes, 2)).toBe(seqOf(outcomes, 0));
      expect(outcomes[2]?.event.data).toEqual({ copy: "first" });
      expect(ids((await store.history("room:1", 0, 10)).events)).toEqual(["d", "e"]);
    });

    it("an all-duplicate batch stores nothing; later events still get larger seqs", async () => {
      const first = await store.append([event("only", "room:1")]);
      const repeats = await store.append([event("only", "room:1"), event("only", "room:1")]);
      expect(repeats.map((outcome) => [outcome.duplicate, outcome.event.seq])).toEqual([
        [true, seqOf(first, 0)],
        [true, seqOf(first, 0)],
      ]);
      const next = await store.append([event("next", "room:1")]);
      expect(seqOf(next, 0)).toBeGreaterThan(seqOf(first, 0));
      expect(ids((await store.history("room:1", 0, 10)).events)).toEqual(["only", "next"]);
      expect(await store.append([])).toEqual([]);
    });

    it("history after a seq returns exactly the later events of that channel, ascending, up to limit", async () => {
      const outcomes = await store.append([
        event("r1", "room:1"),
        event("o1", "room:2"),
        event("r2", "room:1"),
        event("r3", "room:1"),
        event("o2", "room:2"),
        event("r4", "room:1"),
        event("r5", "room:1"),
      ]);
      const afterR2 = seqOf(outcomes, 2);
      const limited = await store.history("room:1", afterR2, 2);
      expect(ids(limited.events)).toEqual(["r3", "r4"]);
      expect(limited.complete).toBe(true);
      const rest = await store.history("room:1", afterR2, 10);
      expect(ids(rest.events)).toEqual(["r3", "r4", "r5"]);
      expect(seqs(rest.events)).toEqual([seqOf(outcomes, 3), seqOf(outcomes, 5), seqOf(outcomes, 6)]);
      expect(ids((await store.history("room:1", 0, 10)).events)).toEqual(["r1", "r2", "r3", "r4", "r5"]);
      expect(await store.history("room:1", seqOf(outcomes, 6), 10)).toEqual({ events: [], complete: true });
      expect(await store.history("room:none", 0, 10)).toEqual({ events: [], complete: true });
    });

    it("the last event of a channel is its stored event with the highest seq, or none", async () => {
      expect(await store.lastEvent("room:1")).toBeUndefined();
      const outcomes = await store.append([event("l1", "room:1"), event("l2", "room:1"), event("m1", "room:2")]);
      const last = await store.lastEvent("room:1");
      expect(last?.id).toBe("l2");
      expect(last?.seq).toBe(seqOf(outcomes, 1));
      expect((await store.lastEvent("room:2"))?.id).toBe("m1");
      expect(await store.lastEvent("room:none")).toBeUndefined();
      await expect(store.lastEvent("not-a-channel")).rejects.toThrow();
    });

    it("retention by age removes older events; recovery from before them is incomplete, after them complete", async () => {
      const outcomes = await store.append([
        event("old1", "room:1", { occurredAt: at(-3 * HOUR_MS) }),
        event("old2", "room:1", { occurredAt: at(-2 * HOUR_MS) }),
        event("new1", "room:1", { occurredAt: at(-1 * HOUR_MS) }),
        event("other", "room:2", { occurredAt: at(-3 * HOUR_MS) }),
        event("kept", "user:5", { occurredAt: at(-3 * HOUR_MS) }),
      ]);
      const policy = { namespace: "room", maxAgeMs: 90 * MINUTE_MS, maxPerChannel: Number.POSITIVE_INFINITY };
      expect(await store.prune([policy], BASE_MS)).toBe(3);

      const fromStart = await store.history("room:1", 0, 10);
      expect(ids(fromStart.events)).toEqual(["new1"]);
      expect(fromStart.complete).toBe(false);
      expect((await store.history("room:1", seqOf(outcomes, 0), 10)).complete).toBe(false);
      const afterRemoved = await store.history("room:1", seqOf(outcomes, 1), 10);
      expect(ids(afterRemoved.events)).toEqual(["new1"]);
      expect(afterRemoved.complete).toBe(true);
      expect(await store.history("room:2", 0, 10)).toEqual({ events: [], complete: false });
      const untouched = await store.history("user:5", 0, 10);
      expect(ids(untouched.events)).toEqual(["kept"]);
      expect(untouched.complete).toBe(true);
      expect(await store.prune([policy], BASE_MS)).toBe(0);
    });

    it("retention by count keeps the newest events of each channel, per namespace", async () => {
      const outcomes = await store.append([
        ...["c1", "c2", "c3", "c4", "c5"].map((id) => event(id, "room:1")),
        event("d1", "room:2"),
        event("d2", "room:2"),
        ...["u1", "u2", "u3"].map((id) => event(id, "user:9")),
      ]);
      const removed = await store.prune(
        [
          { namespace: "room", maxAgeMs: Number.POSITIVE_INFINITY, maxPerChannel: 3 },
          { namespace: "user", maxAgeMs: Number.POSITIVE_INFINITY, maxPerChannel: 1 },
        ],
        BASE_MS,
      );
      expect(removed).toBe(4);
      const room = await store.history("room:1", 0, 10);
      expect(ids(room.events)).toEqual(["c3", "c4", "c5"]);
      expect(room.complete).toBe(false);
      expect((await store.history("room:1", seqOf(outcomes, 0), 10)).complete).toBe(false);
      expect((await store.history("room:1", seqOf(outcomes, 1), 10)).complete).toBe(true);
      expect(await store.history("room:2", 0, 10)).toMatchObject({ complete: true });
      expect(ids((await store.history("room:2", 0, 10)).events)).toEqual(["d1", "d2"]);
      expect(ids((await store.history("user:9", 0, 10)).events)).toEqual(["u3"]);
      expect(await store.prune([{ namespace: "room", maxAgeMs: Number.POSITIVE_INFINITY, maxPerChannel: 3 }], BASE_MS)).toBe(0);
      expect((await store.history("room:1", seqOf(outcomes, 1), 10)).complete).toBe(true);
    });

    it("inbox returns the user's events with the unread count; markRead never goes back", async () => {
      const alice = await store.append([
        event("a1", "user:alice"),
        event("b1", "user:bob"),
        event("a2", "user:alice"),
        event("r1", "room:1"),
        event("a3", "user:alice"),
        event("a4", "user:alice"),
      ]);
      const [s1, s2, s3, s4] = [seqOf(alice, 0), seqOf(alice, 2), seqOf(alice, 4), seqOf(alice, 5)];
      const fresh = await store.inbox("alice", 0, 10);
      expect(ids(fresh.events)).toEqual(["a1", "a2", "a3", "a4"]);
      expect(fresh).toMatchObject({ unread: 4, readUpTo: 0 });

      expect(await store.markRead("alice", s2)).toBe(s2);
      expect(await store.inbox("alice", 0, 10)).toMatchObject({ unread: 2, readUpTo: s2 });
      const page = await store.inbox("alice", s2, 1);
      expect(ids(page.events)).toEqual(["a3"]);
      expect(page).toMatchObject({ unread: 2, readUpTo: s2 });

      expect(await store.markRead("alice", s1)).toBe(s2);
      expect(await store.inbox("alice", 0, 10)).toMatchObject({ unread: 2, readUpTo: s2 });
      expect(await store.markRead("alice", s4)).toBe(s4);
      expect(await store.inbox("alice", s3, 10)).toMatchObject({ unread: 0, readUpTo: s4 });

      await store.append([event("a5", "user:alice")]);
      expect(await store.inbox("alice", s4, 10)).toMatchObject({ unread: 1, readUpTo: s4 });
      const bob = await store.inbox("bob", 0, 10);
      expect(ids(bob.events)).toEqual(["b1"]);
      expect(bob).toMatchObject({ unread: 1, readUpTo: 0 });
    });

    it("markRead never sets the mark past the newest seq of the user's channel, so later events count as unread", async () => {
      expect(await store.markRead("carol", 5)).toBe(0);
      expect(await store.inbox("carol", 0, 10)).toEqual({ events: [], unread: 0, readUpTo: 0 });
      const first = await store.append([event("c1", "user:carol"), event("c2", "user:carol"), event("x1", "room:1")]);
      const [c2, x1] = [seqOf(first, 1), seqOf(first, 2)];
      expect(await store.markRead("carol", Number.MAX_SAFE_INTEGER)).toBe(c2);
      // Another channel's newer seq does not count.
      expect(await store.markRead("carol", x1)).toBe(c2);
      const later = await store.append([event("c3", "user:carol")]);
      expect(await store.inbox("carol", 0, 10)).toMatchObject({ unread: 1, readUpTo: c2 });
      expect(await store.markRead("carol", Number.MAX_SAFE_INTEGER)).toBe(seqOf(later, 0));
      expect(await store.inbox("carol", 0, 10)).toMatchObject({ unread: 0, readUpTo: seqOf(later, 0) });
    });

    it("markRead may still reach seqs that retention removed from the user's channel", async () => {
      const stored = await store.append([event("d1", "user:dan", { occurredAt: at(-HOUR_MS) }), event("d2", "user:dan", { occurredAt: at(-HOUR_MS) })]);
      expect(await store.prune([{ namespace: "user", maxAgeMs: MINUTE_MS, maxPerChannel: 1_000 }], BASE_MS)).toBe(2);
      expect(await store.markRead("dan", Number.MAX_SAFE_INTEGER)).toBe(seqOf(stored, 1));
    });

    it("keeps users' lastSeen: a batch in one call, never moving back, to the millisecond, across a restart", async () => {
      const users = Array.from({ length: 600 }, (_, i) => `user-${i}`);
      await store.saveLastSeen(new Map(users.map((user, i) => [user, BASE_MS + i])));
      await store.saveLastSeen(
        new Map([
          ["user-0", BASE_MS + HOUR_MS + 7],
          ["user-1", BASE_MS - HOUR_MS],
          ["o'brien \"x\"", BASE_MS + 1],
        ]),
      );
      await store.saveLastSeen(new Map());
      expect(await store.loadLastSeen([])).toEqual(new Map());
      expect(await store.loadLastSeen(["user-0", "user-1", "user-599", "o'brien \"x\"", "nobody"])).toEqual(
        new Map([
          ["user-0", BASE_MS + HOUR_MS + 7],
          ["user-1", BASE_MS + 1],
          ["user-599", BASE_MS + 599],
          ["o'brien \"x\"", BASE_MS + 1],
        ]),
      );
      expect((await store.loadLastSeen(users)).size).toBe(600);
      const reopened = await fixture.reopen();
      expect(await reopened.loadLastSeen(["user-0"])).toEqual(new Map([["user-0", BASE_MS + HOUR_MS + 7]]));
    });

    it("keeps revocations idempotently: the later cut-off and expiry win, per user, kind and subject, across a restart", async () => {
      const token = { kind: "token", userId: "u1", tokenId: "jti-'\"1", expiresAtMs: BASE_MS + HOUR_MS } as const;
      await store.saveRevocation(token);
      await store.saveRevocation(token);
      await store.saveRevocation({ ...token, expiresAtMs: BASE_MS + MINUTE_MS });
      await store.saveRevocation({ kind: "token", userId: "u2", tokenId: "jti-'\"1", expiresAtMs: BASE_MS + 2 * HOUR_MS });
      await store.saveRevocation({ kind: "issued_before", userId: "u1", issuedBeforeMs: BASE_MS + 5, expiresAtMs: BASE_MS + 3 * HOUR_MS });
      await store.saveRevocation({ kind: "issued_before", userId: "u1", issuedBeforeMs: BASE_MS + 1, expiresAtMs: BASE_MS + 2 * HOUR_MS });
      await store.saveRevocation({ kind: "channel", userId: "u1", channel: "room:7", issuedBeforeMs: BASE_MS + 9, expiresAtMs: BASE_MS + HOUR_MS });
      await store.saveRevocation({ kind: "channel", userId: "u1", channel: "room:8", issuedBeforeMs: BASE_MS, expiresAtMs: BASE_MS + MINUTE_MS });
      const byKey = (list: Revocation[]) => [...list].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
      const everything: Revocation[] = [
        token,
        { kind: "token", userId: "u2", tokenId: "jti-'\"1", expiresAtMs: BASE_MS + 2 * HOUR_MS },
        { kind: "issued_before", userId: "u1", issuedBeforeMs: BASE_MS + 5, expiresAtMs: BASE_MS + 3 * HOUR_MS },
        { kind: "channel", userId: "u1", channel: "room:7", issuedBeforeMs: BASE_MS + 9, expiresAtMs: BASE_MS + HOUR_MS },
        { kind: "channel", userId: "u1", channel: "room:8", issuedBeforeMs: BASE_MS, expiresAtMs: BASE_MS + MINUTE_MS },
      ];
      expect(byKey(await store.loadRevocations(BASE_MS))).toEqual(byKey(everything));
      // Past its expiry an entry is not loaded, and pruning deletes it.
      expect(byKey(await store.loadRevocations(BASE_MS + MINUTE_MS))).toEqual(byKey(everything.slice(0, 4)));
      expect(await store.pruneRevocations(BASE_MS + HOUR_MS)).toBe(3);
      expect(await store.pruneRevocations(BASE_MS + HOUR_MS)).toBe(0);
      const reopened = await fixture.reopen();
      expect(byKey(await reopened.loadRevocations(BASE_MS))).toEqual(byKey([everything[1]!, everything[2]!]));
    });

    it("a restarted store keeps its data and applying migrations again changes nothing", async () => {
      const before = await store.append([event("p1", "room:1"), event("p2", "user:1")]);
      await store.markRead("1", seqOf(before, 1));
      const reopened = await fixture.reopen();
      expect(reopened.isReady()).toBe(true);
      expect(ids((await reopened.history("room:1", 0, 10)).events)).toEqual(["p1"]);
      expect(await reopened.inbox("1", 0, 10)).toMatchObject({ unread: 0, readUpTo: seqOf(before, 1) });
      const after = await reopened.append([event("p1", "room:1"), event("p3", "room:1")]);
      expect(after.map((outcome) => outcome.duplicate)).toEqual([true, false]);
      expect(seqOf(after, 1)).toBeGreaterThan(seqOf(before, 1));
    });

    it("round-trips nested JSON, unicode, SQL-looking text, null user and null data", async () => {
      const nested = {
        list: [1, -2.5, 0, true, false, null, "x", { deep: { deeper: { deepest: ["end"] } } }],
        text: "Привет, 世界 👋 مرحبا — ñ",
        sqlish: "'; drop table sobranie_event; -- ? ?? $1 :name \\ \" ;",
        empty: {},
        none: [],
        big: 9007199254740991,
      };
      const input: NewEvent[] = [
        event("j1", "room:1", { data: nested, user: "u-42", type: "message.créé" }),
        event("j2", "room:1", { data: null }),
        event("j3", "room:1", { data: "plain; text" }),
        event("j4", "room:1", { data: 0, occurredAt: "2026-11-25T12:00:00.5+02:00" }),
      ];
      const outcomes = await store.append(input);
      const page = await store.history("room:1", 0, 10);
      expect(page.events.map((stored) => stored.data)).toEqual([nested, null, "plain; text", 0]);
      expect(page.events[0]).toMatchObject({ user: "u-42", type: "message.créé", occurredAt: at(0) });
      for (const stored of page.events.slice(1)) expect("user" in stored).toBe(false);
      expect(page.events[3]?.occurredAt).toBe("2026-11-25T10:00:00.500Z");
      expect(outcomes.map((outcome) => outcome.event)).toEqual(page.events);
    });

    it("rejects bad arguments without storing anything", async () => {
      await expect(store.append([event("ok", "room:1"), event("bad", "no channel")])).rejects.toBeInstanceOf(RangeError);
      await expect(store.append([event("ok", "room:1", { occurredAt: "yesterday-ish" })])).rejects.toBeInstanceOf(
        RangeError,
      );
      expect(await store.history("room:1", 0, 10)).toEqual({ events: [], complete: true });
      await expect(store.history("room:1", -1, 10)).rejects.toBeInstanceOf(RangeError);
      await expect(store.history("room:1", 0, 0)).rejects.toBeInstanceOf(RangeError);
      await expect(store.markRead("alice", 1.5)).rejects.toBeInstanceOf(RangeError);
      await expect(
        store.prune([{ namespace: "room", maxAgeMs: -1, maxPerChannel: 1 }], BASE_MS),
      ).rejects.toBeInstanceOf(RangeError);
    });

    it("a stopped store is not ready and rejects calls as unavailable (retryable)", async () => {
      expect(store.isReady()).toBe(true);
      await store.stop();
      await store.stop();
      expect(store.isReady()).toBe(false);
      const failure = store.append([event("late", "room:1")]);
      await expect(failure).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(failure).rejects.toMatchObject({ code: "unavailable", retryable: true });
      await expect(store.history("room:1", 0, 10)).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.saveLastSeen(new Map([["u", BASE_MS]]))).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.loadLastSeen(["u"])).rejects.toBeInstanceOf(StoreUnavailableError);
    });
  });
}
