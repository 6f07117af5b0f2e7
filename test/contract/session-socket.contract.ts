import { afterEach, describe, expect, it } from "vitest";
import { CloseCode } from "@sobranie/protocol/codes";
import type { LocalFanout, SessionSocket } from "../../src/core/ports/session-socket.js";
import { waitFor } from "../support/wait-for.js";

/** What the client at the far end of a connection learnt from the server's close. */
export interface PeerClose {
  readonly code: number;
  readonly reason: string;
}

/** One server-side SessionSocket and the client at its other end. */
export interface SocketPair {
  readonly socket: SessionSocket;
  /** Every frame the client received, parsed, in arrival order (the close is not a frame). */
  readonly received: readonly unknown[];
  /** The close the client received; undefined until it arrived. */
  peerClose(): PeerClose | undefined;
  /** One entry per call of the implementation's close callback (what tells the core the connection is gone), with its code. */
  readonly closeCallbacks: readonly number[];
  /** The client goes away on its own. */
  hangUp(): void;
}

/** What each implementation's test file provides. */
export interface SessionSocketFixture {
  /** The fan-out over every socket `connect` makes. */
  readonly fanout: LocalFanout;
  /** A new connection, open at both ends. */
  connect(): Promise<SocketPair>;
  stop(): Promise<void>;
}

const TIMEOUT_MS = 10_000;

function frame(n: number): string {
  return JSON.stringify({ op: "event", channel: "room:contract", id: `e${n}`, type: "t", data: { n } });
}

function parsed(from: number, to: number): unknown[] {
  const frames: unknown[] = [];
  for (let n = from; n <= to; n++) frames.push(JSON.parse(frame(n)));
  return frames;
}

async function received(pair: SocketPair, count: number, what: string): Promise<void> {
  await waitFor(() => pair.received.length >= count, TIMEOUT_MS, `${what}: ${count} frames (got ${pair.received.length})`);
}

/** Calls every method of a closed socket: none may throw, reach the client or count as a subscriber. */
function touchEverything(socket: SessionSocket, topic: string): void {
  socket.send(frame(999));
  socket.subscribe(topic);
  socket.unsubscribe(topic);
  socket.subscribe(topic);
  socket.close(CloseCode.Internal, "closed twice");
  expect(socket.bufferedBytes()).toBe(0);
}

/**
 * The guarantees of core/ports/session-socket.ts, on a real connection per
 * implementation: whatever the runtime or transport, the core sees the same
 * socket and the same fan-out.
 */
export function sessionSocketContract(name: string, makeFixture: () => Promise<SessionSocketFixture>): void {
  describe(`SessionSocket and LocalFanout contract: ${name}`, () => {
    let fixture: SessionSocketFixture | undefined;
    let topics = 0;
    const topic = (): string => `contract-topic-${++topics}`;
    const connect = async (): Promise<SocketPair> => {
      fixture ??= await makeFixture();
      return fixture.connect();
    };
    const fanout = (): LocalFanout => {
      if (!fixture) throw new Error("connect first");
      return fixture.fanout;
    };

    afterEach(async () => {
      await fixture?.stop();
      fixture = undefined;
    });

    it("delivers sent frames to the client in the order they were sent", async () => {
      const pair = await connect();
      for (let n = 1; n <= 300; n++) pair.socket.send(frame(n));
      await received(pair, 300, "sent frames");
      expect(pair.received).toEqual(parsed(1, 300));
    });

    it("reports bufferedBytes as a number of bytes, 0 or more, before and after sends", async () => {
      const pair = await connect();
      expect(pair.socket.bufferedBytes()).toBeGreaterThanOrEqual(0);
      pair.socket.send(frame(1));
      const buffered = pair.socket.bufferedBytes();
      expect(Number.isInteger(buffered)).toBe(true);
      expect(buffered).toBeGreaterThanOrEqual(0);
      await received(pair, 1, "one frame");
    });

    it("close sends the code and reason after every frame sent or published to the socket before it, then calls the close callback once with the code", async () => {
      const pair = await connect();
      const joined = topic();
      pair.socket.subscribe(joined);
      for (let n = 1; n <= 19; n++) pair.socket.send(frame(n));
      expect(fanout().publish(joined, frame(20))).toBe(1);
      pair.socket.close(CloseCode.TooSlow, "send buffer over the limit");
      await waitFor(() => pair.peerClose() !== undefined, TIMEOUT_MS, "the close at the client");
      expect(pair.peerClose()).toEqual({ code: CloseCode.TooSlow, reason: "send buffer over the limit" });
      expect(pair.received).toEqual(parsed(1, 20));
      await waitFor(() => pair.closeCallbacks.length > 0, TIMEOUT_MS, "the close callback");
      expect(pair.closeCallbacks).toEqual([CloseCode.TooSlow]);
    });

    it("after its own close every method is a no-op: nothing reaches the client, nothing throws, the callback stays single", async () => {
      const pair = await connect();
      const joined = topic();
      pair.socket.subscribe(joined);
      pair.socket.close(CloseCode.Normal, "bye");
      touchEverything(pair.socket, joined);
      expect(fanout().subscribers(joined)).toBe(0);
      expect(fanout().publish(joined, frame(2))).toBe(0);
      await waitFor(() => pair.peerClose() !== undefined && pair.closeCallbacks.length > 0, TIMEOUT_MS, "the close at both ends");
      touchEverything(pair.socket, joined);
      expect(pair.received).toEqual([]);
      expect(pair.closeCallbacks).toEqual([CloseCode.Normal]);
    });

    it("after the client went away every method is a no-op and the socket no longer counts as a subscriber", async () => {
      const pair = await connect();
      const joined = topic();
      pair.socket.subscribe(joined);
      expect(fanout().subscribers(joined)).toBe(1);
      pair.hangUp();
      await waitFor(() => pair.closeCallbacks.length > 0, TIMEOUT_MS, "the close callback after the client left");
      touchEverything(pair.socket, joined);
      expect(fanout().subscribers(joined)).toBe(0);
      expect(fanout().publish(joined, frame(1))).toBe(0);
      expect(pair.closeCallbacks).toHaveLength(1);
    });

    it("subscribe makes publish reach the socket, unsubscribe makes it skip it; subscribers and publish count the sockets", async () => {
      const a = await connect();
      const b = await connect();
      const shared = topic();
      const other = topic();
      expect(fanout().subscribers(shared)).toBe(0);
      expect(fanout().publish(shared, frame(0))).toBe(0);

      a.socket.subscribe(shared);
      b.socket.subscribe(shared);
      b.socket.subscribe(other);
      expect(fanout().subscribers(shared)).toBe(2);
      expect(fanout().subscribers(other)).toBe(1);
      expect(fanout().publish(shared, frame(1))).toBe(2);
      expect(fanout().publish(other, frame(2))).toBe(1);
      await received(a, 1, "a: the shared publish");
      await received(b, 2, "b: both publishes");

      b.socket.unsubscribe(shared);
      expect(fanout().subscribers(shared)).toBe(1);
      expect(fanout().publish(shared, frame(3))).toBe(1);
      a.socket.unsubscribe(shared);
      expect(fanout().subscribers(shared)).toBe(0);
      expect(fanout().publish(shared, frame(4))).toBe(0);
      // A marker sent after the skipped publishes: once it arrived, anything published to the socket would have too.
      a.socket.send(frame(5));
      b.socket.send(frame(5));
      await received(a, 3, "a: the marker");
      await received(b, 3, "b: the marker");
      expect(a.received).toEqual([...parsed(1, 1), ...parsed(3, 3), ...parsed(5, 5)]);
      expect(b.received).toEqual([...parsed(1, 2), ...parsed(5, 5)]);
    });

    it("a frame published to the socket reaches it even when the socket leaves its only topic in the same turn", async () => {
      const pair = await connect();
      const joined = topic();
      pair.socket.subscribe(joined);
      expect(fanout().publish(joined, frame(1))).toBe(1);
      pair.socket.unsubscribe(joined);
      expect(fanout().publish(joined, frame(2))).toBe(0);
      pair.socket.send(frame(3));
      await received(pair, 2, "the published frame and the marker");
      expect(pair.received).toEqual([...parsed(1, 1), ...parsed(3, 3)]);
    });

    it("a frame sent before a publish reaches the client before the published one", async () => {
      const pair = await connect();
      const joined = topic();
      pair.socket.subscribe(joined);
      for (let n = 1; n <= 30; n += 3) {
        pair.socket.send(frame(n));
        expect(fanout().publish(joined, frame(n + 1))).toBe(1);
        pair.socket.send(frame(n + 2));
      }
      await received(pair, 30, "sends and publishes");
      expect(pair.received).toEqual(parsed(1, 30));
    });
  });
}
