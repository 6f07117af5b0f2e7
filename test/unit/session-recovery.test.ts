import { describe, expect, it, vi } from "vitest";
import { MemoryBroker } from "../../src/adapters/memory/memory-broker.js";
import { MemoryEventStore } from "../../src/adapters/memory/memory-event-store.js";
import type { Gateway } from "../../src/core/gateway.js";
import { StoreUnavailableError, type HistoryPage, type StoredEvent } from "../../src/core/ports/event-store.js";
import { encodeEnvelope } from "@sobranie/protocol/envelope";
import { coreGateway } from "../support/core-gateway.js";
import { FakeClock } from "../support/fake-clock.js";
import type { FakeSocket } from "../support/fake-socket.js";

/**
 * The recovery merge (SessionRecoveries.recover) on test doubles, one interleaving per
 * case: the history read waits until the test releases it, and live copies
 * of stored events reach the gateway through the broker, as the worker
 * relays them (with their seq), at the moments the test chooses.
 */

const LINGER_MS = 1_000;
const CHANNEL = "room:1";
/** The gateway's recoveryLimit in coreGateway. */
const RECOVERY_LIMIT = 100;
const OCCURRED_AT = "2026-01-01T00:00:00.000Z";

interface HeldRead {
  /** Answers the read with the page it read when it started. */
  release(): void;
  fail(error: Error): void;
}

/**
 * A MemoryEventStore whose history reads see the events committed before
 * they started (as one query's snapshot does) and answer only when the test
 * releases them.
 */
class HeldHistoryStore extends MemoryEventStore {
  readonly reads: HeldRead[] = [];

  override history(channel: string, afterSeq: number, limit: number): Promise<HistoryPage> {
    const snapshot = super.history(channel, afterSeq, limit);
    return new Promise((resolve, reject) => {
      this.reads.push({ release: () => void snapshot.then(resolve, reject), fail: reject });
    });
  }
}

async function setup() {
  const clock = new FakeClock();
  const broker = new MemoryBroker({ liveNamespaces: ["post", "status"] });
  const store = new HeldHistoryStore();
  await store.start();
  const { gateway, connect } = coreGateway(clock, broker, { bindLingerMs: LINGER_MS, store });
  await broker.start(gateway);
  const unbind = vi.spyOn(broker, "unbind");
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  let ids = 0;
  /** Stores events on `channel`, seqs in order (one seq counter for every channel). */
  const commit = async (count: number, channel = CHANNEL): Promise<StoredEvent[]> => {
    const events = Array.from({ length: count }, () => ({ id: `e-${++ids}`, channel, type: "msg", data: { n: ids }, occurredAt: OCCURRED_AT }));
    return (await store.append(events)).map((outcome) => outcome.event);
  };

  /** The live copy of a stored event, as the worker relays it; it has reached the gateway when this resolves. */
  const relay = async (...events: StoredEvent[]): Promise<void> => {
    for (const event of events) {
      const [namespace, id] = event.channel.split(":");
      const body = encodeEnvelope({ id: event.id, type: event.type, data: event.data, occurredAt: event.occurredAt, seq: event.seq });
      broker.deliverLive(`${namespace}.${id}.${event.type}`, body, { messageId: event.id });
    }
    await settle();
  };

  /** A frame with no seq on the channel (a backend publishing straight to the live exchange). */
  const relayUnsequenced = async (type: string): Promise<void> => {
    broker.deliverLive(`room.1.${type}`, encodeEnvelope({ id: `live-${type}`, type, data: null, occurredAt: OCCURRED_AT }));
    await settle();
  };

  /** Connects a user allowed on every room; `subscribe` sends the frame and waits until its history read (if any) started. */
  const client = (userId: string) => {
    const { socket, session } = connect(userId, { channelPatterns: ["room:*"] });
    const subscribe = async (ref: number, since?: number): Promise<void> => {
      session.receiveText(JSON.stringify({ op: "subscribe", ref, channel: CHANNEL, ...(since === undefined ? {} : { since }) }), 64);
      await settle();
    };
    const unsubscribe = async (ref: number): Promise<void> => {
      session.receiveText(JSON.stringify({ op: "unsubscribe", ref, channel: CHANNEL }), 64);
      await settle();
    };
    const close = (): void => {
      session.close(1000, "bye");
      gateway.closed(session);
    };
    return { socket, session, subscribe, unsubscribe, close };
  };

  /** Answers the oldest waiting history read and lets the session act on it. */
  const releaseRead = async (): Promise<void> => {
    const read = store.reads.shift();
    if (!read) throw new Error("no history read is waiting");
    read.release();
    await settle();
  };

  return { clock, gateway, store, unbind, commit, relay, relayUnsequenced, client, releaseRead, settle };
}

/** What the client got after `welcome`: event frames as their seq, every other frame whole. */
function received(socket: FakeSocket): unknown[] {
  return socket.sent.slice(1).map((frame) => (frame.op === "event" ? (frame.seq ?? `unsequenced ${String(frame.type)}`) : frame));
}

function joined(socket: FakeSocket): boolean {
  return socket.topics.has(CHANNEL);
}

/** Recovery sinks the gateway still feeds for the channel (private state: what "the recovery ended" means). */
function recoverySinks(gateway: Gateway): number {
  return gateway["live"]["recovering"].get(CHANNEL)?.size ?? 0;
}

const recoveredOk = (missed: number) => ({ op: "ok", ref: 1, recovered: true, missed });
const unrecoveredOk = (missed: number) => ({ op: "ok", ref: 1, recovered: false, missed });

describe("subscribe with since: the recovery merge", () => {
  it("sends the history alone when nothing comes live during the read, and joins the topic when the live stream reaches its last seq", async () => {
    const { gateway, commit, relay, client, releaseRead } = await setup();
    const [first, second, third] = await commit(3);
    const { socket, subscribe } = client("alice");
    await subscribe(1, first?.seq);
    expect(received(socket)).toEqual([]);
    expect(joined(socket)).toBe(false);

    await releaseRead();
    expect(received(socket)).toEqual([recoveredOk(2), 2, 3]);
    expect(socket.sent[2]).toEqual({ op: "event", channel: CHANNEL, id: second?.id, seq: 2, type: "msg", data: { n: 2 }, ts: OCCURRED_AT });
    // The live copy of seq 3 may still be on its way: the session waits for it outside the topic.
    expect(joined(socket)).toBe(false);
    expect(recoverySinks(gateway)).toBe(1);

    await relay(third as StoredEvent);
    expect(joined(socket)).toBe(true);
    expect(recoverySinks(gateway)).toBe(0);
    expect(received(socket)).toEqual([recoveredOk(2), 2, 3]);
  });

  it("sends an event committed after the read started once, after the history, and joins the topic with it", async () => {
    const { commit, relay, client, releaseRead } = await setup();
    await commit(2);
    const { socket, subscribe } = client("alice");
    await subscribe(1, 0);
    const [late] = await commit(1);
    await relay(late as StoredEvent);
    expect(received(socket)).toEqual([]);

    await releaseRead();
    expect(received(socket)).toEqual([recoveredOk(2), 1, 2, 3]);
    expect(joined(socket)).toBe(true);
  });

  it("sends an event that is both in the history and came live during the read once", async () => {
    const { commit, relay, client, releaseRead } = await setup();
    const events = await commit(3);
    const { socket, subscribe } = client("alice");
    await subscribe(1, 0);
    // The live copies of 2 and 3 reach the node while the history (which has them) is read.
    await relay(events[1] as StoredEvent, events[2] as StoredEvent);

    await releaseRead();
    expect(received(socket)).toEqual([recoveredOk(3), 1, 2, 3]);
    expect(joined(socket)).toBe(true);
  });

  it("drops the late live copy of the last history event and joins the topic exactly then, so later events arrive once, by the topic", async () => {
    const { gateway, commit, relay, client, releaseRead } = await setup();
    const events = await commit(2);
    const { socket, subscribe } = client("alice");
    await subscribe(1, 0);
    await releaseRead();
    expect(received(socket)).toEqual([recoveredOk(2), 1, 2]);
    expect(joined(socket)).toBe(false);

    await relay(events[0] as StoredEvent);
    expect(joined(socket)).toBe(false);
    await relay(events[1] as StoredEvent);
    expect(joined(socket)).toBe(true);
    expect(recoverySinks(gateway)).toBe(0);
    expect(received(socket)).toEqual([recoveredOk(2), 1, 2]);

    const [next] = await commit(1);
    await relay(next as StoredEvent);
    expect(received(socket)).toEqual([recoveredOk(2), 1, 2, 3]);
  });

  describe("with seq gaps and out-of-order live copies", () => {
    it("merges a history whose seqs skip other channels' events with a live event past another gap, and joins with it", async () => {
      const { commit, relay, client, releaseRead } = await setup();
      await commit(1); // seq 1
      await commit(1, "room:2"); // seq 2
      const [third] = await commit(1); // seq 3
      const { socket, subscribe } = client("alice");
      await subscribe(1, 0);
      await commit(1, "room:2"); // seq 4
      const [fifth] = await commit(1); // seq 5, after the read started
      await relay(third as StoredEvent, fifth as StoredEvent);

      await releaseRead();
      expect(received(socket)).toEqual([recoveredOk(2), 1, 3, 5]);
      expect(joined(socket)).toBe(true);
    });

    it("joins on the first live event past the history's last seq when the live copy of that last one never came", async () => {
      const { commit, relay, client, releaseRead } = await setup();
      await commit(2);
      const { socket, subscribe } = client("alice");
      await subscribe(1, 0);
      await releaseRead();
      expect(joined(socket)).toBe(false);

      const [next] = await commit(1);
      await relay(next as StoredEvent);
      expect(received(socket)).toEqual([recoveredOk(2), 1, 2, 3]);
      expect(joined(socket)).toBe(true);
    });

    it("drops live events at or before since, sent during the read", async () => {
      const { commit, relay, client, releaseRead } = await setup();
      const events = await commit(3);
      const { socket, subscribe } = client("alice");
      await subscribe(1, 2);
      await relay(events[0] as StoredEvent, events[1] as StoredEvent);

      await releaseRead();
      expect(received(socket)).toEqual([recoveredOk(1), 3]);
      expect(joined(socket)).toBe(false);
    });

    it("sends a live copy arriving after a later seq (out of order) never, and one already in the history never again", async () => {
      const { commit, relay, client, releaseRead } = await setup();
      const events = await commit(2);
      const { socket, subscribe } = client("alice");
      await subscribe(1, 0);
      await releaseRead();
      const [third, fourth] = await commit(2);
      // 4 overtakes 3 on the way here: the node has delivered 4, so 3 (and a redelivered 1) is dropped for everyone.
      await relay(fourth as StoredEvent, third as StoredEvent, events[0] as StoredEvent);
      expect(received(socket)).toEqual([recoveredOk(2), 1, 2, 4]);
      expect(joined(socket)).toBe(true);
    });
  });

  it("subscribes without recovery when the history read fails: ok says recovered false, live events still arrive once", async () => {
    const { store, commit, relay, client, settle } = await setup();
    await commit(2);
    const { socket, subscribe } = client("alice");
    await subscribe(1, 1);
    const [live] = await commit(1);
    await relay(live as StoredEvent);
    store.reads.shift()?.fail(new StoreUnavailableError());
    await settle();
    expect(received(socket)).toEqual([unrecoveredOk(0), 3]);
    expect(joined(socket)).toBe(true);

    const [next] = await commit(1);
    await relay(next as StoredEvent);
    expect(received(socket)).toEqual([unrecoveredOk(0), 3, 4]);
  });

  it("says recovered false with missed = recoveryLimit when the history reaches the limit, then goes on with what comes live", async () => {
    const { commit, relay, client, releaseRead } = await setup();
    await commit(RECOVERY_LIMIT + 1);
    const { socket, subscribe } = client("alice");
    await subscribe(1, 0);
    await releaseRead();
    const seqs = Array.from({ length: RECOVERY_LIMIT }, (_, index) => index + 1);
    expect(received(socket)).toEqual([unrecoveredOk(RECOVERY_LIMIT), ...seqs]);
    expect(joined(socket)).toBe(false);

    const [next] = await commit(1);
    await relay(next as StoredEvent);
    expect(received(socket)).toEqual([unrecoveredOk(RECOVERY_LIMIT), ...seqs, RECOVERY_LIMIT + 2]);
    expect(joined(socket)).toBe(true);
  });

  describe("ending while the history read is pending", () => {
    it("on unsubscribe: no frame after its ok, the recovery ends and the binding is given back", async () => {
      const { clock, gateway, unbind, commit, relay, client, releaseRead } = await setup();
      await commit(2);
      const { socket, subscribe, unsubscribe } = client("alice");
      await subscribe(1, 0);
      await unsubscribe(2);
      expect(recoverySinks(gateway)).toBe(0);
      await releaseRead();
      await relay(...(await commit(1)));
      expect(received(socket)).toEqual([{ op: "ok", ref: 2 }]);
      expect(joined(socket)).toBe(false);
      clock.advance(LINGER_MS);
      expect(unbind).toHaveBeenCalledTimes(1);
    });

    it("on close: no frame after it, the recovery ends and the binding is given back", async () => {
      const { clock, gateway, unbind, commit, relay, client, releaseRead } = await setup();
      await commit(2);
      const { socket, subscribe, close } = client("alice");
      await subscribe(1, 0);
      close();
      expect(recoverySinks(gateway)).toBe(0);
      await releaseRead();
      await relay(...(await commit(1)));
      expect(received(socket)).toEqual([]);
      clock.advance(LINGER_MS);
      expect(unbind).toHaveBeenCalledTimes(1);
    });

    it("on unsubscribe and subscribe again: the first read's end leaves the second recovery in place, so a later unsubscribe still ends it", async () => {
      const { gateway, commit, relay, client, releaseRead } = await setup();
      await commit(2);
      const { socket, subscribe, unsubscribe } = client("alice");
      await subscribe(1, 0);
      await unsubscribe(2);
      await subscribe(3, 0);
      await releaseRead(); // the first subscribe's read, answered after it was unsubscribed
      await releaseRead();
      expect(received(socket)).toEqual([{ op: "ok", ref: 2 }, { op: "ok", ref: 3, recovered: true, missed: 2 }, 1, 2]);
      expect(recoverySinks(gateway)).toBe(1);

      await unsubscribe(4);
      await relay(...(await commit(1)));
      expect(received(socket)).toEqual([{ op: "ok", ref: 2 }, { op: "ok", ref: 3, recovered: true, missed: 2 }, 1, 2, { op: "ok", ref: 4 }]);
      expect(joined(socket)).toBe(false);
      expect(recoverySinks(gateway)).toBe(0);
    });
  });

  describe("an event without seq arriving during the recovery", () => {
    it("while the history is read: sent once after the history, in arrival order with the buffered live events", async () => {
      const { commit, relay, relayUnsequenced, client, releaseRead } = await setup();
      const events = await commit(2);
      const { socket, subscribe } = client("alice");
      await subscribe(1, 0);
      await relayUnsequenced("typing");
      const [late] = await commit(1);
      await relay(events[1] as StoredEvent, late as StoredEvent);

      await releaseRead();
      expect(received(socket)).toEqual([recoveredOk(2), 1, 2, "unsequenced typing", 3]);
      expect(joined(socket)).toBe(true);
    });

    it("after the history, before the live stream caught up: sent at once, and does not count as caught up", async () => {
      const { commit, relay, relayUnsequenced, client, releaseRead } = await setup();
      const events = await commit(2);
      const { socket, subscribe } = client("alice");
      await subscribe(1, 0);
      await releaseRead();
      await relayUnsequenced("typing");
      expect(received(socket)).toEqual([recoveredOk(2), 1, 2, "unsequenced typing"]);
      expect(joined(socket)).toBe(false);

      await relay(events[1] as StoredEvent);
      expect(joined(socket)).toBe(true);
      await relayUnsequenced("typing");
      expect(received(socket)).toEqual([recoveredOk(2), 1, 2, "unsequenced typing", "unsequenced typing"]);
    });
  });
});
