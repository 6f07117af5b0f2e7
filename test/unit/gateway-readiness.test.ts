import { describe, expect, it } from "vitest";
import { MemoryBroker } from "../../src/adapters/memory/memory-broker.js";
import { MemoryPresenceBus } from "../../src/adapters/memory/memory-presence-bus.js";
import { coreGateway } from "../support/core-gateway.js";
import { FakeClock } from "../support/fake-clock.js";

/** A gateway on a presence bus the test connects and disconnects, started the way the app does: gateway first, then the broker. */
async function setup() {
  const clock = new FakeClock();
  const broker = new MemoryBroker({ liveNamespaces: ["post"] });
  const presenceBus = new MemoryPresenceBus();
  const { gateway } = coreGateway(clock, broker, { bindLingerMs: 1_000, presenceBus });
  return { gateway, broker, presenceBus };
}

describe("gateway readiness", () => {
  it("waits for the presence bus as well as the broker, and reports each check", async () => {
    const { gateway, broker, presenceBus } = await setup();
    expect(gateway.readiness()).toEqual({ ready: false, checks: { broker: false, brokerPublish: false, presence: false, revocations: true, accepting: true } });

    await broker.start(gateway);
    // The broker alone is not enough: users admitted now would be invisible to other nodes.
    expect(gateway.readiness()).toEqual({ ready: false, checks: { broker: true, brokerPublish: true, presence: false, revocations: true, accepting: true } });

    gateway.start();
    await Promise.resolve();
    expect(presenceBus.isConnected()).toBe(true);
    expect(gateway.readiness()).toEqual({ ready: true, checks: { broker: true, brokerPublish: true, presence: true, revocations: true, accepting: true } });
  });

  it("is not ready while the presence bus is away, and ready again when it returns", async () => {
    const { gateway, broker, presenceBus } = await setup();
    gateway.start();
    await broker.start(gateway);
    expect(gateway.isReady()).toBe(true);

    presenceBus.disconnect();
    expect(gateway.readiness()).toEqual({ ready: false, checks: { broker: true, brokerPublish: true, presence: false, revocations: true, accepting: true } });

    presenceBus.reconnect();
    expect(gateway.isReady()).toBe(true);
  });
});
