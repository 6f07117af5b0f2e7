import { describe, expect, it, vi } from "vitest";
import { MemoryBroker } from "../../src/adapters/memory/memory-broker.js";
import { ChannelBindings } from "../../src/core/channel-bindings.js";
import { FakeClock } from "../support/fake-clock.js";

async function setup(lingerMs = 1_000, wholeNamespaces: string[] = []) {
  const broker = new MemoryBroker({ liveNamespaces: ["post"] });
  await broker.start({ handleDelivery: () => ({ kind: "delivered" }), handleControl: () => ({ kind: "delivered" }), readinessChanged: () => {} });
  const bind = vi.spyOn(broker, "bind");
  const unbind = vi.spyOn(broker, "unbind");
  const clock = new FakeClock();
  const counts: number[] = [];
  const bindings = new ChannelBindings({ broker, clock, lingerMs, onCountChange: (n) => counts.push(n), wholeNamespaces });
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

  describe("with a namespace bound as a whole", () => {
    it("binds the namespace once and no channel of it, yet knows which channels have local subscribers", async () => {
      const { bind, unbind, clock, bindings, counts } = await setup(1_000, ["user"]);
      bindings.bindWholeNamespaces();
      await Promise.all([bindings.acquire("user.1"), bindings.acquire("user.2"), bindings.acquire("post.1")]);
      expect(bind.mock.calls.map(([prefix]) => prefix).sort()).toEqual(["post.1", "user"]);
      expect(bindings.isWhole("user")).toBe(true);
      expect(bindings.isWhole("post")).toBe(false);
      expect([bindings.has("user.1"), bindings.has("user.2"), bindings.has("user.3")]).toEqual([true, true, false]);
      bindings.release("user.1");
      clock.advance(999);
      expect(bindings.has("user.1")).toBe(true);
      clock.advance(1);
      expect(bindings.has("user.1")).toBe(false);
      expect(unbind).not.toHaveBeenCalled();
      // The namespace counts as one binding; its channels count as none.
      expect(counts).toEqual([1, 2]);
    });

    it("waits for the namespace binding before a subscribe is confirmed, and retries it after a failure", async () => {
      const { bind, bindings } = await setup(1_000, ["user"]);
      bind.mockRejectedValueOnce(new Error("channel closed"));
      bindings.bindWholeNamespaces();
      await expect(bindings.acquire("user.1")).rejects.toThrow("channel closed");
      await bindings.acquire("user.1");
      await bindings.acquire("user.2");
      expect(bind.mock.calls.map(([prefix]) => prefix)).toEqual(["user", "user"]);
    });
  });
});
