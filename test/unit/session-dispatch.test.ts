import { describe, expect, it } from "vitest";
import { MemoryBroker } from "../../src/adapters/memory/memory-broker.js";
import { BUILT_IN_NAMESPACES, NamespaceRegistry } from "../../src/core/namespaces.js";
import { coreGateway } from "../support/core-gateway.js";
import { FakeClock } from "../support/fake-clock.js";

/** A registry with a bug: answering who may subscribe throws (what any handler's unexpected failure looks like to dispatch). */
class BrokenRegistry extends NamespaceRegistry {
  override canSubscribe(): never {
    throw new Error("bug in the policy");
  }
}

async function setup() {
  const clock = new FakeClock();
  const broker = new MemoryBroker({ liveNamespaces: ["post"] });
  const { gateway, connect } = coreGateway(clock, broker, { bindLingerMs: 1_000, namespaces: new BrokenRegistry(BUILT_IN_NAMESPACES) });
  await broker.start(gateway);
  return connect("u1");
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("a frame whose handler fails unexpectedly", () => {
  it("is answered error internal with its ref, whether the handler rejects (subscribe) or throws (presence), and the socket stays open", async () => {
    const { socket, session } = await setup();
    session.receiveText(JSON.stringify({ op: "subscribe", ref: 1, channel: "post:1" }), 64);
    session.receiveText(JSON.stringify({ op: "presence", ref: 2, channel: "room:1" }), 64);
    await settle();
    expect(socket.sent.filter((frame) => frame.ref !== undefined)).toEqual([
      { op: "error", ref: 2, code: "internal", message: "internal error" },
      { op: "error", ref: 1, code: "internal", message: "internal error" },
    ]);
    expect(socket.closedWith).toBeUndefined();
    // The session still answers.
    session.receiveText(JSON.stringify({ op: "ping", ref: 3 }), 32);
    expect(socket.sent.at(-1)).toEqual({ op: "pong", ref: 3 });
  });
});
