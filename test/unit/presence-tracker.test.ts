import { afterEach, describe, expect, it } from "vitest";
import { PresenceTracker, type PresenceBackendEvent } from "../../src/core/presence/index.js";
import { silentLogger } from "@sobranie/protocol/runtime/logger";
import { noopMetrics } from "../../src/core/ports/metrics.js";
import type { LocalFanout } from "../../src/core/ports/session-socket.js";
import { MemoryPresenceBus, MemoryPresenceNetwork } from "../../src/adapters/memory/memory-presence-bus.js";
import { MemoryEventStore } from "../../src/adapters/memory/memory-event-store.js";
import type { LastSeenStore } from "../../src/core/ports/last-seen-store.js";
import { FakeClock } from "../support/fake-clock.js";

const HEARTBEAT_MS = 1_000;
const TTL_MS = 3_000;

type Sent = { topic: string; frame: Record<string, unknown> };

class RecordingFanout implements LocalFanout {
  readonly sent: Sent[] = [];
  /** Local sockets every topic reaches. */
  localSubscribers = 1;
  publish(topic: string, text: string): number {
    this.sent.push({ topic, frame: JSON.parse(text) as Record<string, unknown> });
    return this.localSubscribers;
  }
  subscribers(_topic: string): number {
    return this.localSubscribers;
  }
  frames(op: string, topic?: string): Array<Record<string, unknown>> {
    return this.sent.filter((s) => s.frame.op === op && (topic === undefined || s.topic === topic)).map((s) => s.frame);
  }
}

interface Node {
  readonly id: string;
  readonly tracker: PresenceTracker;
  readonly bus: MemoryPresenceBus;
  readonly fanout: RecordingFanout;
  readonly events: PresenceBackendEvent[];
  /** Every subscriber count the node showed its sockets, in order. */
  readonly shownCounts: Array<{ channel: string; count: number }>;
}

/** Lets every queued microtask (bus deliveries, delta flushes, snapshots) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
}

function makeCluster(options: { maxListedMembers?: number; fanoutPerSec?: number; fanoutDeliveriesPerSec?: number; lastSeenStore?: LastSeenStore } = {}) {
  const clock = new FakeClock();
  const network = new MemoryPresenceNetwork();
  const nodes: Node[] = [];
  const add = async (id: string): Promise<Node> => {
    const bus = new MemoryPresenceBus(network);
    const fanout = new RecordingFanout();
    const events: PresenceBackendEvent[] = [];
    const shownCounts: Array<{ channel: string; count: number }> = [];
    const tracker = new PresenceTracker(
      {
        nodeId: id,
        incarnation: `${id}-1`,
        heartbeatMs: HEARTBEAT_MS,
        ttlMs: TTL_MS,
        maxListedMembers: options.maxListedMembers ?? 1_000,
        fanoutPerSec: options.fanoutPerSec ?? 1_000,
        fanoutDeliveriesPerSec: options.fanoutDeliveriesPerSec ?? 1_000_000,
        fanoutFlushMs: 500,
        subscriberCountMs: 1_000,
      },
      {
        clock,
        bus,
        fanout,
        metrics: noopMetrics,
        logger: silentLogger,
        publishEvent: (event) => events.push(event),
        lastSeenStore: options.lastSeenStore,
        showSubscriberCount: (channel, count) => shownCounts.push({ channel, count }),
      },
    );
    await tracker.start();
    const node = { id, tracker, bus, fanout, events, shownCounts };
    nodes.push(node);
    return node;
  };
  /** Advances in heartbeat-sized steps so deliveries happen between ticks, as they would in real time. */
  const advance = async (ms: number): Promise<void> => {
    for (let done = 0; done < ms; done += 250) {
      clock.advance(Math.min(250, ms - done));
      await settle();
    }
  };
  const allEvents = () => nodes.flatMap((node) => node.events);
  return { clock, network, nodes, add, advance, allEvents };
}

type ClusterOptions = Parameters<typeof makeCluster>[0];

/** A cluster of nodes `ids`, added in that order and run past warm-up (2.5 heartbeats): every node has heard every other. */
async function warmCluster<const Ids extends readonly string[]>(ids: Ids, options?: ClusterOptions) {
  const cluster = makeCluster(options);
  const nodes: Node[] = [];
  for (const id of ids) nodes.push(await cluster.add(id));
  await cluster.advance(2_500);
  return { cluster, nodes: nodes as { -readonly [K in keyof Ids]: Node } };
}

describe("PresenceTracker", () => {
  let cleanup: Array<() => void> = [];
  afterEach(() => {
    for (const stop of cleanup) stop();
    cleanup = [];
  });

  it("counts a user with two tabs as one member, leaving only when the last tab leaves", async () => {
    const { nodes: [a, b] } = await warmCluster(["a", "b"]);
    a.tracker.track("room:1", "u1", { name: "U" });
    a.tracker.track("room:1", "u1", { name: "U" });
    await settle();
    expect(a.fanout.frames("join", "room:1")).toEqual([{ op: "join", channel: "room:1", user: "u1", info: { name: "U" } }]);
    expect(b.fanout.frames("join", "room:1")).toHaveLength(1);
    expect(b.tracker.members("room:1")).toEqual({ count: 1, members: [{ user: "u1", info: { name: "U" } }] });
    a.tracker.untrack("room:1", "u1");
    await settle();
    expect(b.fanout.frames("leave")).toHaveLength(0);
    a.tracker.untrack("room:1", "u1");
    await settle();
    expect(a.fanout.frames("leave", "room:1")).toHaveLength(1);
    expect(b.fanout.frames("leave", "room:1")).toHaveLength(1);
    expect(b.tracker.members("room:1")).toEqual({ count: 0, members: [] });
  });

  it("gives each join and leave event the channel's member count after it: 1 on the first join, 0 on the last leave", async () => {
    const { cluster, nodes: [a, b] } = await warmCluster(["a", "b"]);
    a.tracker.track("room:1", "u1", undefined);
    await settle();
    b.tracker.track("room:1", "u2", undefined);
    await settle();
    a.tracker.untrack("room:1", "u1");
    await settle();
    b.tracker.untrack("room:1", "u2");
    await settle();
    const changes = cluster.allEvents().filter((e) => e.type === "join" || e.type === "leave");
    expect(changes.map((e) => [e.type, e.user, e.data.members])).toEqual([
      ["join", "u1", 1],
      ["join", "u2", 2],
      ["leave", "u1", 1],
      ["leave", "u2", 0],
    ]);
  });

  it("keeps a user on two nodes online until both connections are gone, with one offline event", async () => {
    const { cluster, nodes: [a, b] } = await warmCluster(["a", "b"]);
    a.tracker.userConnected("u1");
    b.tracker.userConnected("u1");
    await settle();
    expect(cluster.allEvents().map((e) => e.routingKey)).toEqual(["presence.status.u1.online"]);
    expect((await a.tracker.statuses(["u1"]))[0]).toMatchObject({ user: "u1", online: true });
    // Both last connections close at the same moment, each node still seeing the other's.
    a.tracker.userDisconnected("u1");
    b.tracker.userDisconnected("u1");
    await settle();
    expect((await b.tracker.statuses(["u1"]))[0]).toMatchObject({ user: "u1", online: false });
    expect(cluster.allEvents().map((e) => e.routingKey)).toEqual(["presence.status.u1.online", "presence.status.u1.offline"]);
    expect(b.fanout.frames("status", "status:u1").map((f) => f.online)).toEqual([true, false]);
  });

  it("removes a dead node's members on every survivor after the TTL, each leave published once", async () => {
    const { cluster, nodes: [a, b, c] } = await warmCluster(["a", "b", "c"]);
    a.tracker.track("room:1", "ua", undefined);
    a.tracker.userConnected("ua");
    c.tracker.track("room:1", "uc", undefined);
    await settle();
    const before = cluster.allEvents().length;
    // a is the publisher (lowest id): kill it, like kill -9, without `leaving`.
    await a.bus.stop();
    await cluster.advance(TTL_MS + 2 * HEARTBEAT_MS);
    expect(b.tracker.members("room:1").members.map((m) => m.user)).toEqual(["uc"]);
    expect(c.tracker.members("room:1").members.map((m) => m.user)).toEqual(["uc"]);
    expect(c.fanout.frames("leave", "room:1")).toEqual([{ op: "leave", channel: "room:1", user: "ua" }]);
    const after = cluster.allEvents().slice(before);
    expect(after.map((e) => e.routingKey).sort()).toEqual(["presence.room.1.leave", "presence.status.ua.offline"]);
    expect(b.events.slice(-2)).toHaveLength(2);
    a.tracker.stop();
  });

  it("removes a gracefully stopping node's members at once", async () => {
    const { nodes: [a, b] } = await warmCluster(["a", "b"]);
    b.tracker.track("room:1", "ub", undefined);
    await settle();
    expect(a.tracker.members("room:1").count).toBe(1);
    b.tracker.stop();
    await settle();
    expect(a.tracker.members("room:1").count).toBe(0);
    expect(a.events.map((e) => e.routingKey)).toEqual(["presence.room.1.join", "presence.room.1.leave"]);
  });

  it("resynchronises from a snapshot after a lost delta (heartbeat seq/digest disagree)", async () => {
    const { cluster, nodes: [a, b] } = await warmCluster(["a", "b"]);
    cluster.network.filter = (message, to) => !(message.kind === "delta" && to === b.bus);
    a.tracker.track("room:1", "u1", undefined);
    a.tracker.track("room:1", "u2", undefined);
    await settle();
    expect(b.tracker.members("room:1").count).toBe(0);
    cluster.network.filter = undefined;
    await cluster.advance(HEARTBEAT_MS);
    expect(b.tracker.members("room:1").members.map((m) => m.user).sort()).toEqual(["u1", "u2"]);
    expect(b.fanout.frames("join", "room:1")).toHaveLength(2);
  });

  it("converges after its own bus connection drops and comes back, without declaring the others dead", async () => {
    const { cluster, nodes: [a, b] } = await warmCluster(["a", "b"]);
    a.tracker.track("room:1", "u1", undefined);
    await settle();
    b.bus.disconnect();
    a.tracker.track("room:1", "u2", undefined);
    a.tracker.untrack("room:1", "u1");
    await cluster.advance(TTL_MS * 2);
    // b heard nobody, so it judged nobody: u1 still listed until the resync.
    expect(b.tracker.members("room:1").members.map((m) => m.user)).toEqual(["u1"]);
    b.bus.reconnect();
    await cluster.advance(HEARTBEAT_MS);
    expect(b.tracker.members("room:1").members.map((m) => m.user)).toEqual(["u2"]);
    // a judged b dead meanwhile and kept working; a second view of u2 would show a duplicate.
    expect(a.tracker.members("room:1").count).toBe(1);
  });

  it("a node that stops hearing the bus while still connected (a hung broker node) judges nobody and announces no leave", async () => {
    const { cluster, nodes: [a, b] } = await warmCluster(["a", "b"]);
    a.tracker.track("room:1", "ua", undefined);
    await settle();
    expect(b.tracker.members("room:1").count).toBe(1);
    // b's connection stays up, but nothing reaches it any more: not a's messages, not its own.
    cluster.network.filter = (_message, to) => to !== b.bus;
    await cluster.advance(TTL_MS * 3);
    expect(b.tracker.members("room:1").members.map((m) => m.user)).toEqual(["ua"]);
    expect(b.fanout.frames("leave")).toEqual([]);
    // Hearing again (its own heartbeat included) restarts a's clock on b rather than judging the silence.
    cluster.network.filter = undefined;
    await cluster.advance(TTL_MS - HEARTBEAT_MS);
    expect(b.tracker.members("room:1").count).toBe(1);
    expect(b.fanout.frames("leave")).toEqual([]);
  });

  it("a node that hears its own heartbeats still judges a silent peer dead after the TTL", async () => {
    const { cluster, nodes: [a, b] } = await warmCluster(["a", "b"]);
    a.tracker.track("room:1", "ua", undefined);
    await settle();
    // Only a's messages are lost (a hung, or cut off from the bus): b still hears itself.
    cluster.network.filter = (message) => message.node !== "a";
    await cluster.advance(TTL_MS + 2 * HEARTBEAT_MS);
    expect(b.tracker.members("room:1").count).toBe(0);
    expect(b.fanout.frames("leave", "room:1")).toEqual([{ op: "leave", channel: "room:1", user: "ua" }]);
  });

  it("replaces a restarted node's entries (new incarnation under the same id)", async () => {
    const { cluster, nodes: [a, b1] } = await warmCluster(["a", "b"]);
    b1.tracker.track("room:1", "old", undefined);
    await settle();
    await b1.bus.stop();
    const bus = new MemoryPresenceBus(cluster.network);
    const b2 = new PresenceTracker(
      { nodeId: "b", incarnation: "b-2", heartbeatMs: HEARTBEAT_MS, ttlMs: TTL_MS, maxListedMembers: 10, fanoutPerSec: 100, fanoutDeliveriesPerSec: 1_000_000 },
      { clock: cluster.clock, bus, fanout: new RecordingFanout(), metrics: noopMetrics, logger: silentLogger, publishEvent: () => {} },
    );
    await b2.start();
    b2.track("room:1", "new", undefined);
    await settle();
    expect(a.tracker.members("room:1").members.map((m) => m.user)).toEqual(["new"]);
    b2.stop();
    b1.tracker.stop();
  });

  it("answers counts only for a channel above the listing limit", async () => {
    const cluster = makeCluster({ maxListedMembers: 2 });
    const a = await cluster.add("a");
    for (const user of ["u1", "u2", "u3"]) a.tracker.track("room:big", user, undefined);
    expect(a.tracker.members("room:big")).toEqual({ count: 3, members: [], truncated: true });
  });

  it("coalesces join/leave frames of a busy channel past its rate", async () => {
    const cluster = makeCluster({ fanoutPerSec: 2 });
    const a = await cluster.add("a");
    for (const user of ["u1", "u2", "u3", "u4"]) a.tracker.track("room:1", user, undefined);
    a.tracker.untrack("room:1", "u4");
    expect(a.fanout.frames("join", "room:1").map((f) => f.user)).toEqual(["u1", "u2"]);
    await cluster.advance(500);
    // u4 joined and left within the held window: nothing to tell.
    expect(a.fanout.frames("join", "room:1").map((f) => f.user)).toEqual(["u1", "u2", "u3"]);
    expect(a.fanout.frames("leave", "room:1")).toHaveLength(0);
  });

  it("sends one members frame instead of naming each user when more than the rate changed in a flush", async () => {
    const cluster = makeCluster({ fanoutPerSec: 2 });
    const a = await cluster.add("a");
    for (let i = 1; i <= 10; i++) a.tracker.track("room:1", `u${i}`, undefined);
    a.tracker.untrack("room:1", "u1");
    expect(a.fanout.frames("join", "room:1").map((f) => f.user)).toEqual(["u1", "u2"]);
    await cluster.advance(500);
    // Held: u3..u10 joined (8), u1 left (1): 9 net changes > 2 a second, so counts only.
    expect(a.fanout.frames("members", "room:1")).toEqual([{ op: "members", channel: "room:1", count: 9, joined: 8, left: 1 }]);
    expect(a.fanout.frames("join", "room:1")).toHaveLength(2);
    expect(a.fanout.frames("leave", "room:1")).toHaveLength(0);
  });

  it("in a room with many local subscribers, names fewer users a second: frames × subscribers stay within the delivery rate", async () => {
    // 50 frames a second allowed, but 2,000 deliveries a second with 500 local subscribers is 4 frames.
    const cluster = makeCluster({ fanoutPerSec: 50, fanoutDeliveriesPerSec: 2_000 });
    const a = await cluster.add("a");
    a.fanout.localSubscribers = 500;
    for (let i = 1; i <= 4; i++) a.tracker.track("room:1", `u${i}`, undefined);
    expect(a.fanout.frames("join", "room:1").map((f) => f.user)).toEqual(["u1", "u2", "u3", "u4"]);
    for (let i = 5; i <= 9; i++) a.tracker.track("room:1", `u${i}`, undefined);
    expect(a.fanout.frames("join", "room:1")).toHaveLength(4);
    await cluster.advance(500);
    // Held: u5..u9, 5 users > 4 a flush: one members frame (500 deliveries), not 5 × 500.
    expect(a.fanout.frames("members", "room:1")).toEqual([{ op: "members", channel: "room:1", count: 9, joined: 5, left: 0 }]);
    expect(a.fanout.frames("join", "room:1")).toHaveLength(4);

    // A change or two per flush is still named, whatever the room's size.
    a.fanout.localSubscribers = 1_000_000;
    a.tracker.untrack("room:1", "u1");
    await cluster.advance(1_000);
    expect(a.fanout.frames("leave", "room:1").map((f) => f.user)).toEqual(["u1"]);
  });

  it("publishes each event once when nodes start together and changes happen while they warm up", async () => {
    const cluster = makeCluster();
    const [c, b, a] = [await cluster.add("c"), await cluster.add("b"), await cluster.add("a")];
    c.tracker.userConnected("u1");
    b.tracker.track("room:1", "u2", undefined);
    await settle();
    await cluster.advance(3_000);
    expect(cluster.allEvents().map((e) => e.routingKey).sort()).toEqual(["presence.room.1.join", "presence.status.u1.online"]);
    expect(a.events).toHaveLength(2);
    a.tracker.userConnected("u3");
    await settle();
    expect(cluster.allEvents()).toHaveLength(3);
  });

  it("does not judge a peer dead in a tick that comes late after an event-loop stall longer than the TTL", async () => {
    const { cluster, nodes: [a, b] } = await warmCluster(["a", "b"]);
    b.tracker.userConnected("u1");
    await settle();
    // a's loop stalls for 2 TTLs: its ticks run late, before b's heartbeats (queued meanwhile) are read.
    cluster.clock.stall(2 * TTL_MS);
    expect((await a.tracker.statuses(["u1"]))[0]?.online).toBe(true);
    await settle();
    await cluster.advance(1_000);
    expect((await a.tracker.statuses(["u1"]))[0]?.online).toBe(true);
    expect(a.events.map((e) => e.type)).toEqual(["online"]);
  });

  it("publishes events held during warm-up once it knows it is the only node", async () => {
    const cluster = makeCluster();
    const a = await cluster.add("a");
    a.tracker.userConnected("u1");
    await settle();
    expect(a.events).toHaveLength(0);
    await cluster.advance(HEARTBEAT_MS);
    expect(a.events.map((e) => e.routingKey)).toEqual(["presence.status.u1.online"]);
  });

  it("does not announce members a newly started node finds already there", async () => {
    const { cluster, nodes: [a] } = await warmCluster(["a"]);
    a.tracker.userConnected("u1");
    await settle();
    const b = await cluster.add("0-first");
    await cluster.advance(2_500);
    expect((await b.tracker.statuses(["u1"]))[0]?.online).toBe(true);
    expect(cluster.allEvents().map((e) => e.routingKey)).toEqual(["presence.status.u1.online"]);
    b.tracker.userConnected("u2");
    await settle();
    expect(b.events.map((e) => e.routingKey)).toEqual(["presence.status.u2.online"]);
    expect(a.events.map((e) => e.routingKey)).toEqual(["presence.status.u1.online"]);
  });

  describe("counted subscribers", () => {
    it("counts a channel's subscribers on every node, and publishes occupied on its first and vacated on its last, once each", async () => {
      const { cluster, nodes: [a, b] } = await warmCluster(["a", "b"]);
      a.tracker.countSubscriber("post:1", "s1");
      await settle();
      b.tracker.countSubscriber("post:1", "s2");
      await settle();
      expect([a.tracker.subscriberCount("post:1"), b.tracker.subscriberCount("post:1")]).toEqual([2, 2]);
      expect(b.tracker.subscribedChannels()).toEqual([{ channel: "post:1", count: 2 }]);
      // Nobody's members: not listed as a presence channel, no join or leave frames.
      expect(b.tracker.members("post:1").count).toBe(0);
      expect(b.tracker.channels()).toEqual([]);
      expect(b.fanout.frames("join")).toEqual([]);
      a.tracker.uncountSubscriber("post:1", "s1");
      await settle();
      b.tracker.uncountSubscriber("post:1", "s2");
      await settle();
      expect(a.tracker.subscriberCount("post:1")).toBe(0);
      expect(cluster.allEvents().map((e) => [e.routingKey, e.type, e.data])).toEqual([
        ["presence.post.1.occupied", "occupied", { channel: "post:1" }],
        ["presence.post.1.vacated", "vacated", { channel: "post:1" }],
      ]);
    });

    it("shows a change of count at once after a quiet interval, and the changes within one as a single trailing count", async () => {
      const { cluster, nodes: [a, b] } = await warmCluster(["a", "b"]);
      a.tracker.countSubscriber("post:2", "s1");
      await settle();
      expect(b.shownCounts).toEqual([{ channel: "post:2", count: 1 }]);
      a.tracker.countSubscriber("post:2", "s2");
      b.tracker.countSubscriber("post:2", "s3");
      a.tracker.uncountSubscriber("post:2", "s1");
      await settle();
      expect(b.shownCounts).toHaveLength(1);
      await cluster.advance(1_000);
      expect(b.shownCounts).toEqual([
        { channel: "post:2", count: 1 },
        { channel: "post:2", count: 2 },
      ]);
      expect(a.shownCounts).toEqual(b.shownCounts);
    });

    it("removes a dead node's subscribers after the TTL: the channel it alone held is vacated once", async () => {
      const { cluster, nodes: [a, b, c] } = await warmCluster(["a", "b", "c"]);
      a.tracker.countSubscriber("post:3", "sa");
      c.tracker.countSubscriber("post:3", "sc");
      c.tracker.countSubscriber("post:4", "sc");
      await settle();
      const before = cluster.allEvents().length;
      await c.bus.stop();
      await cluster.advance(TTL_MS + 2 * HEARTBEAT_MS);
      expect([a.tracker.subscriberCount("post:3"), b.tracker.subscriberCount("post:3"), b.tracker.subscriberCount("post:4")]).toEqual([1, 1, 0]);
      expect(cluster.allEvents().slice(before).map((e) => e.routingKey)).toEqual(["presence.post.4.vacated"]);
      expect(b.shownCounts.at(-1)).toEqual({ channel: "post:4", count: 0 });
      c.tracker.stop();
    });
  });

  describe("lastSeen in the store", () => {
    /** Records every write, so a test can tell how many nodes wrote what. */
    class RecordingStore implements LastSeenStore {
      readonly inner = new MemoryEventStore();
      readonly writes: Array<[string, number]> = [];
      down = false;
      async saveLastSeen(seen: ReadonlyMap<string, number>): Promise<void> {
        if (this.down) throw new Error("connection refused");
        this.writes.push(...seen);
        await this.inner.saveLastSeen(seen);
      }
      async loadLastSeen(users: readonly string[]): Promise<Map<string, number>> {
        if (this.down) throw new Error("connection refused");
        return this.inner.loadLastSeen(users);
      }
    }

    /** Node a alone, settled, with u1 online and a working store. */
    async function oneNodeWithUserOnline() {
      const store = new RecordingStore();
      await store.inner.start();
      const { cluster, nodes: [a] } = await warmCluster(["a"], { lastSeenStore: store });
      a.tracker.userConnected("u1");
      await settle();
      return { store, cluster, a };
    }

    it("writes each offline once, from the publishing node, in a batch; a node started later answers from the store", async () => {
      const store = new RecordingStore();
      await store.inner.start();
      const { cluster, nodes: [a, b] } = await warmCluster(["a", "b"], { lastSeenStore: store });
      b.tracker.userConnected("u1");
      b.tracker.userConnected("u2");
      await settle();
      b.tracker.userDisconnected("u1");
      b.tracker.userDisconnected("u2");
      const leftAt = cluster.clock.now();
      await settle();
      expect(store.writes).toEqual([]);
      await cluster.advance(1_000);
      // Node a publishes events (lowest id), so a alone writes: one batch, once per user.
      expect(store.writes).toEqual([
        ["u1", leftAt],
        ["u2", leftAt],
      ]);
      expect(a.events.map((e) => e.type)).toEqual(["online", "online", "offline", "offline"]);
      const c = await cluster.add("c");
      await cluster.advance(2_500);
      expect(await c.tracker.statuses(["u1", "never"])).toEqual([
        { user: "u1", online: false, lastSeen: new Date(leftAt).toISOString() },
        { user: "never", online: false, lastSeen: null },
      ]);
    });

    it("answers from memory while the store is unreachable, and writes the time once it is back", async () => {
      const { store, cluster, a } = await oneNodeWithUserOnline();
      store.down = true;
      a.tracker.userDisconnected("u1");
      const leftAt = cluster.clock.now();
      await cluster.advance(1_000);
      expect(await a.tracker.statuses(["u1"])).toEqual([{ user: "u1", online: false, lastSeen: new Date(leftAt).toISOString() }]);
      store.down = false;
      await cluster.advance(1_000);
      expect(store.writes).toEqual([["u1", leftAt]]);
    });

    it("writes what waits when it stops", async () => {
      const { store, a } = await oneNodeWithUserOnline();
      a.tracker.userDisconnected("u1");
      await settle();
      expect(store.writes).toEqual([]);
      await a.tracker.stop();
      expect(store.writes.map(([user]) => user)).toEqual(["u1"]);
    });
  });
});
