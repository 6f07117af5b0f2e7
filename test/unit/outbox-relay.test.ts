import { describe, expect, it } from "vitest";
import { BrokerUnavailableError } from "@sobranie/protocol/errors";
import { silentLogger } from "@sobranie/protocol/runtime/logger";
import { noopMetrics, type Metrics } from "../../src/core/ports/metrics.js";
import type { EventsPublisher, Outbox, OutboxRow, OutboxSignal, RelayBatchResult } from "../../src/core/ports/outbox.js";
import { OutboxRelay } from "../../src/worker/outbox-relay.js";
import { FakeClock } from "../support/fake-clock.js";
import { waitFor } from "../support/wait-for.js";

/** Rows in memory, claimed in id order; `busy` simulates another relay holding the claim. */
class FakeOutbox implements Outbox {
  readonly rows: Array<OutboxRow & { published: boolean }> = [];
  signal: OutboxSignal | undefined;
  busy = false;
  claims = 0;
  pruned: number[] = [];
  private nextId = 1;

  add(count: number): void {
    for (let i = 0; i < count; i++) {
      const id = String(this.nextId++);
      this.rows.push({ id, routingKey: `user.1.n.created`, eventId: `e${id}`, body: `{"id":"e${id}"}`, createdAtMs: 0, published: false });
    }
  }
  async start(signal: OutboxSignal): Promise<void> {
    this.signal = signal;
  }
  async stop(): Promise<void> {}
  isListening(): boolean {
    return true;
  }
  async relayBatch(limit: number, publish: (rows: readonly OutboxRow[]) => Promise<void>): Promise<RelayBatchResult> {
    this.claims += 1;
    if (this.busy) return { busy: true };
    const claimed = this.rows.filter((row) => !row.published).slice(0, limit);
    if (claimed.length > 0) await publish(claimed);
    for (const row of claimed) row.published = true;
    return { busy: false, relayed: claimed.length };
  }
  async prunePublished(beforeMs: number): Promise<number> {
    this.pruned.push(beforeMs);
    return 0;
  }
}

class RecordingPublisher implements EventsPublisher {
  readonly ids: string[] = [];
  down = false;
  async publish(message: { messageId: string }): Promise<void> {
    if (this.down) throw new BrokerUnavailableError();
    this.ids.push(message.messageId);
  }
}

function setup(options: { batchSize?: number } = {}) {
  const outbox = new FakeOutbox();
  const publisher = new RecordingPublisher();
  const clock = new FakeClock();
  const counted = { relayed: 0, failures: 0 };
  const metrics: Metrics = { ...noopMetrics, outboxRelayed: (rows) => void (counted.relayed += rows), outboxRelayFailed: () => void (counted.failures += 1) };
  const relay = new OutboxRelay({
    outbox,
    publisher,
    clock,
    logger: silentLogger,
    metrics,
    options: { batchSize: options.batchSize ?? 3, sweepIntervalMs: 5_000, keepPublishedMs: 60_000, retry: { initialDelayMs: 100, maxDelayMs: 1_000 } },
  });
  return { outbox, publisher, clock, relay, counted };
}

describe("OutboxRelay", () => {
  it("on start relays what accumulated, in id order, batch after batch", async () => {
    const { outbox, publisher, relay, counted } = setup({ batchSize: 3 });
    outbox.add(7);
    await relay.start();
    await relay.idle();
    expect(publisher.ids).toEqual(["e1", "e2", "e3", "e4", "e5", "e6", "e7"]);
    expect(counted).toEqual({ relayed: 7, failures: 0 });
    expect(outbox.rows.every((row) => row.published)).toBe(true);
    await relay.stop();
  });

  it("a NOTIFY wakes it; NOTIFYs during a read coalesce into one more read", async () => {
    const { outbox, publisher, relay } = setup();
    await relay.start();
    await relay.idle();
    const before = outbox.claims;
    outbox.add(2);
    relay.notified();
    relay.notified();
    relay.notified();
    await relay.idle();
    expect(publisher.ids).toEqual(["e1", "e2"]);
    expect(outbox.claims - before).toBe(2);
    await relay.stop();
  });

  it("rows whose NOTIFY was lost are relayed by the sweep, and old published rows are pruned", async () => {
    const { outbox, publisher, clock, relay } = setup();
    await relay.start();
    await relay.idle();
    outbox.add(2);
    clock.advance(4_999);
    await relay.idle();
    expect(publisher.ids).toEqual([]);
    clock.advance(1);
    await waitFor(() => publisher.ids.length === 2, 1_000, "sweep relays");
    expect(outbox.pruned).toEqual([clock.now() - 60_000]);
    await relay.stop();
  });

  it("a re-LISTEN triggers a read", async () => {
    const { outbox, publisher, relay } = setup();
    await relay.start();
    await relay.idle();
    outbox.add(1);
    relay.listening();
    await relay.idle();
    expect(publisher.ids).toEqual(["e1"]);
    await relay.stop();
  });

  it("while the broker is away nothing is marked; after the backoff the rows go out, NOTIFYs do not cut the backoff", async () => {
    const { outbox, publisher, clock, relay, counted } = setup();
    publisher.down = true;
    outbox.add(2);
    await relay.start();
    await relay.idle();
    expect(outbox.rows.some((row) => row.published)).toBe(false);
    expect(counted).toEqual({ relayed: 0, failures: 1 });
    const claims = outbox.claims;
    relay.notified();
    await relay.idle();
    expect(outbox.claims).toBe(claims);
    publisher.down = false;
    clock.advance(1_000);
    await waitFor(() => outbox.rows.every((row) => row.published), 1_000, "retry relays and marks");
    expect(publisher.ids).toEqual(["e1", "e2"]);
    expect(counted).toEqual({ relayed: 2, failures: 1 });
    await relay.stop();
  });

  it("leaves the rows to the relay holding the claim", async () => {
    const { outbox, publisher, relay } = setup();
    outbox.busy = true;
    outbox.add(1);
    await relay.start();
    await relay.idle();
    expect(publisher.ids).toEqual([]);
    await relay.stop();
  });

  it("stop is idempotent and ends the timers", async () => {
    const { outbox, clock, relay } = setup();
    await relay.start();
    await relay.idle();
    await Promise.all([relay.stop(), relay.stop()]);
    const claims = outbox.claims;
    outbox.add(1);
    relay.notified();
    clock.advance(60_000);
    expect(outbox.claims).toBe(claims);
  });
});
