import { EventEmitter } from "node:events";
import type { ConfirmChannel, Message } from "amqplib";
import { describe, expect, it } from "vitest";
import { ConfirmPublisher, PublishConfirmTimeoutError, PublishNackedError, PublishUnroutableError } from "@sobranie/publisher/amqp/confirm-publisher";
import { BrokerUnavailableError } from "@sobranie/protocol/errors";
import { FakeClock } from "../support/fake-clock.js";

// ConfirmPublisher's bounded waits on a stand-in for amqplib's ConfirmChannel:
// the test decides when (and whether) each confirm, return and probe answer
// arrives, which a real broker cannot be made to do on cue.

interface Written {
  readonly routingKey: string;
  readonly options: Record<string, unknown>;
  readonly confirm: (error: unknown) => void;
}

class FakeConfirmChannel extends EventEmitter {
  readonly written: Written[] = [];
  readonly probes: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];

  publish(_exchange: string, routingKey: string, _content: Buffer, options: Record<string, unknown>, confirm: (error: unknown) => void): boolean {
    this.written.push({ routingKey, options, confirm });
    return true;
  }

  checkExchange(): Promise<void> {
    return new Promise((resolve, reject) => this.probes.push({ resolve, reject }));
  }

  /** The broker returns a mandatory message (before its confirm, as RabbitMQ does). */
  returnMessage(written: Written): void {
    this.emit("return", { fields: {}, properties: { headers: written.options.headers }, content: Buffer.alloc(0) } as unknown as Message);
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

function setup(onUnresponsive?: (error: Error) => void) {
  const clock = new FakeClock();
  const channel = new FakeConfirmChannel();
  const publisher = new ConfirmPublisher({ clock, confirmTimeoutMs: 1_000, ...(onUnresponsive ? { onUnresponsive } : {}) });
  publisher.attach(channel as unknown as ConfirmChannel);
  const publish = (key: string, options: { mandatory?: boolean } = {}) => publisher.publish("x", key, Buffer.from("{}"), options);
  const publishRouted = (key: string) => publisher.publishRouted("x", key, Buffer.from("{}"), {});
  return { clock, channel, publisher, publish, publishRouted };
}

/** Settles a promise into a value the test can look at. */
function outcome(promise: Promise<void>): { state: string; error?: unknown } {
  const result: { state: string; error?: unknown } = { state: "pending" };
  promise.then(
    () => (result.state = "resolved"),
    (error: unknown) => Object.assign(result, { state: "rejected", error }),
  );
  return result;
}

describe("ConfirmPublisher", () => {
  it("resolves on the confirm and rejects a nack as PublishNackedError", async () => {
    const { channel, publish } = setup();
    const ok = outcome(publish("a"));
    const nacked = outcome(publish("b"));
    channel.written[0]!.confirm(null);
    channel.written[1]!.confirm(new Error("message nacked"));
    await settle();
    expect(ok.state).toBe("resolved");
    expect(nacked.error).toBeInstanceOf(PublishNackedError);
  });

  it("rejects a publish whose confirm does not come within the timeout, and ignores the late confirm", async () => {
    const { clock, channel, publish, publisher } = setup();
    const late = outcome(publish("a"));
    clock.advance(999);
    await settle();
    expect(late.state).toBe("pending");
    clock.advance(500);
    await settle();
    expect(late.error).toBeInstanceOf(PublishConfirmTimeoutError);
    expect((late.error as PublishConfirmTimeoutError).retryable).toBe(true);
    channel.written[0]!.confirm(null);
    await settle();
    expect(late.state).toBe("rejected");
    // Nothing is left waiting: settle() returns at once.
    let settled = false;
    void publisher.settle(60_000).then(() => (settled = true));
    await settle();
    expect(settled).toBe(true);
  });

  it("rejects a mandatory message the broker returned (no queue took it) as PublishUnroutableError", async () => {
    const { channel, publish } = setup();
    const returned = outcome(publish("dead", { mandatory: true }));
    const routed = outcome(publish("dead", { mandatory: true }));
    channel.returnMessage(channel.written[0]!);
    channel.written[0]!.confirm(null);
    channel.written[1]!.confirm(null);
    await settle();
    expect(returned.error).toBeInstanceOf(PublishUnroutableError);
    expect(routed.state).toBe("resolved");
    expect(channel.written[0]!.options.mandatory).toBe(true);
  });

  it("routed publishes: an overdue confirm is replaced by a probe the node answers, later writes probe at once until every confirm is in", async () => {
    const { clock, channel, publishRouted } = setup();
    const first = outcome(publishRouted("live.1"));
    clock.advance(1_000);
    await settle();
    expect(channel.probes).toHaveLength(1);
    channel.probes[0]!.resolve();
    await settle();
    expect(first.state).toBe("resolved");
    // A queue somewhere still owes its confirm: the next write does not wait for it.
    const second = outcome(publishRouted("live.2"));
    await settle();
    expect(channel.probes).toHaveLength(2);
    channel.probes[1]!.resolve();
    await settle();
    expect(second.state).toBe("resolved");
    // Every confirm came in: back to waiting for confirms.
    channel.written[0]!.confirm(null);
    channel.written[1]!.confirm(null);
    const third = outcome(publishRouted("live.3"));
    await settle();
    expect(channel.probes).toHaveLength(2);
    channel.written[2]!.confirm(null);
    await settle();
    expect(third.state).toBe("resolved");
  });

  it("routed publishes: an unanswered probe means this node is hung: reject as unavailable and report it", async () => {
    const unresponsive: Error[] = [];
    const { clock, publishRouted } = setup((error) => unresponsive.push(error));
    const stuck = outcome(publishRouted("live.1"));
    clock.advance(1_000);
    await settle();
    clock.advance(1_000);
    await settle();
    expect(stuck.error).toBeInstanceOf(BrokerUnavailableError);
    expect(unresponsive).toHaveLength(1);
  });
});
