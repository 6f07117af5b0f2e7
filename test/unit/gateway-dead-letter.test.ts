import { describe, expect, it } from "vitest";
import { MemoryBroker } from "../../src/adapters/memory/memory-broker.js";
import type { LiveDelivery } from "../../src/core/ports/broker.js";
import { silentLogger, type Logger } from "@sobranie/protocol/runtime/logger";
import { noopMetrics, type Metrics } from "../../src/core/ports/metrics.js";
import type { LocalFanout } from "../../src/core/ports/session-socket.js";
import { coreGateway } from "../support/core-gateway.js";
import { FakeClock } from "../support/fake-clock.js";

function delivery(routingKey: string, body: string): LiveDelivery {
  return { routingKey, body: new TextEncoder().encode(body), messageId: undefined, timestampMs: undefined };
}

describe("Gateway.handleDelivery", () => {
  it("dead-letters an unexpected failure as internal, counted and logged once at error, and goes on delivering", () => {
    const deadLettered: string[] = [];
    const errors: string[] = [];
    const metrics: Metrics = { ...noopMetrics, deadLettered: (reason) => void deadLettered.push(reason) };
    const logger: Logger = { ...silentLogger, error: (_fields, message) => void errors.push(message), child: () => logger };
    let failures = 1;
    const fanout: LocalFanout = {
      publish: () => {
        if (failures-- > 0) throw new Error("socket layer exploded");
        return 1;
      },
      subscribers: () => 1,
    };
    const { gateway } = coreGateway(new FakeClock(), new MemoryBroker({ liveNamespaces: ["post"] }), { metrics, logger, fanout, bindLingerMs: 1_000 });
    const event = (id: string) => delivery("post.1.t", JSON.stringify({ id, type: "t", data: {} }));

    expect(gateway.handleDelivery(event("first"))).toEqual({
      kind: "dead-letter",
      reason: "internal",
      message: expect.stringContaining("socket layer exploded"),
    });
    expect(deadLettered).toEqual(["internal"]);
    expect(errors).toHaveLength(1);
    expect(gateway.handleDelivery(event("second"))).toEqual({ kind: "delivered" });
    expect(deadLettered).toEqual(["internal"]);
  });

  it("counts data nested over 64 levels as too_deep", () => {
    const deadLettered: string[] = [];
    const metrics: Metrics = { ...noopMetrics, deadLettered: (reason) => void deadLettered.push(reason) };
    const { gateway } = coreGateway(new FakeClock(), new MemoryBroker({ liveNamespaces: ["post"] }), { metrics, bindLingerMs: 1_000 });
    const body = `{"id":"deep","type":"t","data":${"[".repeat(10_000)}${"]".repeat(10_000)}}`;
    expect(gateway.handleDelivery(delivery("post.1.t", body))).toMatchObject({ kind: "dead-letter", reason: "too_deep" });
    expect(deadLettered).toEqual(["too_deep"]);
  });
});
