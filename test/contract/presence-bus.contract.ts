import { afterEach, describe, expect, it } from "vitest";
import type { PresenceBus, PresenceBusHandler } from "../../src/core/ports/presence-bus.js";
import type { PresenceMessage } from "@sobranie/protocol/presence";
import { waitFor } from "../support/wait-for.js";

/** What each adapter's test file provides: buses that share one exchange, and a way to cut one off. */
export interface PresenceBusFixture {
  /** A new bus on the shared exchange, not started. */
  bus(node: string): PresenceBus;
  /** Cuts `bus` off the exchange; it reconnects by itself (AMQP) or when `restore` is called. */
  dropConnection(bus: PresenceBus, node: string): Promise<void>;
  restore(bus: PresenceBus): Promise<void>;
  cleanup(): Promise<void>;
}

const TIMEOUT_MS = 15_000;

class Recorder implements PresenceBusHandler {
  readonly messages: PresenceMessage[] = [];
  readonly states: boolean[] = [];
  received(message: PresenceMessage): void {
    this.messages.push(message);
  }
  connectionChanged(connected: boolean): void {
    this.states.push(connected);
  }
  from(node: string): PresenceMessage[] {
    return this.messages.filter((message) => message.node === node);
  }
}

function heartbeat(node: string, seq: number): PresenceMessage {
  return { kind: "heartbeat", node, incarnation: `${node}-1`, atMs: 1, seq, digest: "0:0:0", synced: true };
}

export function presenceBusContract(name: string, makeFixture: () => Promise<PresenceBusFixture>): void {
  describe(`PresenceBus contract: ${name}`, () => {
    let fixture: PresenceBusFixture | undefined;
    const started: PresenceBus[] = [];
    const start = async (node: string): Promise<{ bus: PresenceBus; recorder: Recorder }> => {
      fixture ??= await makeFixture();
      const bus = fixture.bus(node);
      const recorder = new Recorder();
      await bus.start(recorder);
      started.push(bus);
      return { bus, recorder };
    };

    afterEach(async () => {
      await Promise.all(started.splice(0).map((bus) => bus.stop()));
      await fixture?.cleanup();
      fixture = undefined;
    });

    it("delivers each node's messages to every node, itself included, in publish order", async () => {
      const a = await start("a");
      const b = await start("b");
      expect(a.bus.isConnected()).toBe(true);
      expect(a.recorder.states).toEqual([true]);
      for (let seq = 1; seq <= 200; seq++) a.bus.publish(heartbeat("a", seq));
      b.bus.publish({ kind: "delta", node: "b", incarnation: "b-1", atMs: 2, seq: 1, changes: [{ op: "add", key: "room:1", user: "u1", info: { name: "U" } }] });
      for (const recorder of [a.recorder, b.recorder]) {
        await waitFor(() => recorder.from("a").length === 200 && recorder.from("b").length === 1, TIMEOUT_MS, "all messages");
        expect(recorder.from("a").map((message) => (message as { seq: number }).seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
        expect(recorder.from("b")[0]).toEqual({
          kind: "delta",
          node: "b",
          incarnation: "b-1",
          atMs: 2,
          seq: 1,
          changes: [{ op: "add", key: "room:1", user: "u1", info: { name: "U" } }],
        });
      }
    });

    it("reports a lost connection, drops publishes meanwhile, and receives again after it reconnects", async () => {
      const a = await start("a");
      const b = await start("b");
      await fixture!.dropConnection(b.bus, "b");
      await waitFor(() => b.recorder.states.includes(false), TIMEOUT_MS, "disconnect reported");
      expect(() => b.bus.publish(heartbeat("b", 1))).not.toThrow();
      await fixture!.restore(b.bus);
      await waitFor(() => b.bus.isConnected(), TIMEOUT_MS, "reconnected");
      expect(b.recorder.states.at(-1)).toBe(true);
      // Connected means publishing; receiving follows once its queue is bound (the AMQP bus publishes first),
      // so a message sent in between may miss it, as a periodic heartbeat would: keep sending until one arrives.
      await waitFor(
        () => {
          a.bus.publish(heartbeat("a", 99));
          return b.recorder.from("a").some((message) => (message as { seq: number }).seq === 99);
        },
        TIMEOUT_MS,
        "delivery after reconnect",
      );
    });

    it("receives nothing after stop", async () => {
      const a = await start("a");
      const b = await start("b");
      await b.bus.stop();
      expect(b.bus.isConnected()).toBe(false);
      a.bus.publish(heartbeat("a", 1));
      await waitFor(() => a.recorder.from("a").length === 1, TIMEOUT_MS, "own message");
      expect(b.recorder.from("a")).toEqual([]);
    });
  });
}
