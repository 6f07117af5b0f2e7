import { describe, expect, it } from "vitest";
import { BrokerUnavailableError } from "@sobranie/protocol/errors";
import { silentLogger } from "@sobranie/protocol/runtime/logger";
import { BackendEventQueue } from "../../src/core/presence/backend-event-queue.js";
import { FakeClock } from "../support/fake-clock.js";

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A broker that can be away (rejects unavailable) or refuse one event for good. */
function setup(maxWaiting = 100) {
  const clock = new FakeClock();
  const sent: string[] = [];
  const broker = { away: false, poison: "" };
  const queue = new BackendEventQueue<string>(
    async (event) => {
      await Promise.resolve();
      if (broker.away) throw new BrokerUnavailableError();
      if (event === broker.poison) throw new Error("refused");
      sent.push(event);
    },
    { maxWaiting, retryMs: 2_000 },
    { clock, logger: silentLogger },
  );
  return { clock, sent, broker, queue };
}

describe("BackendEventQueue (presence events for backends)", () => {
  it("sends in order; during an outage everything waits, in order, and goes out on resume", async () => {
    const { sent, broker, queue } = setup();
    queue.push("a.online");
    await settle();
    broker.away = true;
    queue.push("a.offline");
    queue.push("b.online");
    await settle();
    queue.push("a.online");
    await settle();
    expect(sent).toEqual(["a.online"]);
    expect(queue.size).toBe(3);
    broker.away = false;
    queue.resume();
    await settle();
    expect(sent).toEqual(["a.online", "a.offline", "b.online", "a.online"]);
    expect(queue.size).toBe(0);
  });

  it("retries by itself after retryMs when no resume comes (a reconnect raced the failure)", async () => {
    const { clock, sent, broker, queue } = setup();
    broker.away = true;
    queue.push("x");
    await settle();
    broker.away = false;
    clock.advance(1_999);
    await settle();
    expect(sent).toEqual([]);
    clock.advance(1);
    await settle();
    expect(sent).toEqual(["x"]);
  });

  it("keeps the newest maxWaiting events during a long outage, and skips an event refused for good", async () => {
    const { sent, broker, queue } = setup(3);
    broker.away = true;
    for (const event of ["e1", "e2", "e3", "e4", "e5"]) queue.push(event);
    await settle();
    expect(queue.size).toBe(3);
    broker.away = false;
    broker.poison = "e4";
    queue.resume();
    await settle();
    expect(sent).toEqual(["e3", "e5"]);
  });

  it("sends nothing after close", async () => {
    const { clock, sent, broker, queue } = setup();
    broker.away = true;
    queue.push("x");
    await settle();
    queue.close();
    broker.away = false;
    clock.advance(10_000);
    await settle();
    expect(sent).toEqual([]);
  });

  it("pipelines a burst: what arrives during a confirm goes out together, not one confirm at a time", async () => {
    const started: string[] = [];
    const confirms: Array<() => void> = [];
    const queue = new BackendEventQueue<string>(
      (event) => {
        started.push(event);
        return new Promise<void>((resolve) => confirms.push(resolve));
      },
      { maxWaiting: 100, retryMs: 2_000 },
      { clock: new FakeClock(), logger: silentLogger },
    );
    for (let i = 0; i < 10; i++) queue.push(`e${i}`);
    await settle();
    // The first went alone; the nine that arrived meanwhile go out together once it is confirmed.
    expect(started).toEqual(["e0"]);
    confirms[0]?.();
    await settle();
    expect(started).toHaveLength(10);
    for (const confirm of confirms) confirm();
    await settle();
    expect(queue.size).toBe(0);
  });
});
