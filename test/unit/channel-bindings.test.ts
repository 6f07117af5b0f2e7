import { describe, expect, it, vi } from "vitest";
import { MemoryBroker } from "../../src/adapters/memory/memory-broker.js";
import { ChannelBindings } from "../../src/core/channel-bindings.js";
import { FakeClock } from "../support/fake-clock.js";

async function setup(lingerMs = 1_000) {
  const broker = new MemoryBroker({ liveNamespaces: ["post"] });
  await broker.start({ handleDelivery: () => ({ kind: "delivered" }), readinessChanged: () => {} });
  const bind = vi.spyOn(broker, "bind");
  const unbind = vi.spyOn(broker, "unbind");
  const clock = new FakeClock();
  const counts: number[] = [];
  const bindings = new ChannelBindings({ broker, clock, lingerMs, onCountChange: (n) => counts.push(n) });
  return { broker, bind, unbind, clock, bindings, counts };
}

describe("ChannelBindings", () => {
  it("binds once for many subscribers and unbinds only after the last one left and the linger passed", async () => {
    const { bind, unbind, clock, bindings } = await setup();
    await Promise.all([bindings.acquire("post.1"), bindings.acquire("post.1"), bindings.acquire("post.1")]);
    expect(bind).toHaveBeenCalledTimes(1);
    bindings.release("post.1");
    bindings.release("post.1");
    clock.advance(5_000);
    expect(unbind).not.toHaveBeenCalled();
    bindings.release("post.1");
    clock.advance(999);
    expect(unbind).not.toHaveBeenCalled();
    clock.advance(1);
    expect(unbind).toHaveBeenCalledWith("post.1");
    expect(bindings.size()).toBe(0);
  });

  it("keeps the binding when a subscriber comes back within the linger (reconnect churn)", async () => {
    const { bind, unbind, clock, bindings } = await setup();
    await bindings.acquire("post.1");
    bindings.release("post.1");
    clock.advance(500);
    await bindings.acquire("post.1");
    clock.advance(10_000);
    expect(bind).toHaveBeenCalledTimes(1);
    expect(unbind).not.toHaveBeenCalled();
  });

  it("gives the reference back when the bind fails, and binds again on the next acquire", async () => {
    const { broker, bind, clock, bindings } = await setup();
    bind.mockRejectedValueOnce(new Error("channel closed"));
    await expect(bindings.acquire("post.2")).rejects.toThrow("channel closed");
    await bindings.acquire("post.2");
    expect(bind).toHaveBeenCalledTimes(2);
    bindings.release("post.2");
    clock.advance(1_000);
    expect(bindings.size()).toBe(0);
    await broker.stop();
  });

  it("reports the number of bound or lingering channels", async () => {
    const { clock, bindings, counts } = await setup();
    await bindings.acquire("post.1");
    await bindings.acquire("post.2");
    bindings.release("post.1");
    clock.advance(1_000);
    expect(counts).toEqual([1, 2, 1]);
  });
});
