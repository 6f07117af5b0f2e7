import { describe, expect, it } from "vitest";
import { CorkedSends } from "../../src/http/corked-sends.js";
import type { EdgeServer, EdgeWebSocket } from "../../src/core/ports/edge.js";
import { EdgeFanout, WebSocketSessionSocket } from "../../src/http/websocket-session-socket.js";
import { CloseCode } from "@sobranie/protocol/codes";

/** What reached the wire, in order: each write is the frames of one system call. */
class WireLog {
  readonly writes: string[][] = [];
}

/** An edge WebSocket stand-in: a send outside `cork` is a write of its own; sends inside one cork are one write. */
function fakeWs(wire: WireLog, name: string): EdgeWebSocket<unknown> & { ended: number | undefined } {
  let corked: string[] | undefined;
  const ws = {
    ended: undefined as number | undefined,
    send(message: string) {
      if (corked) corked.push(`${name}:${message}`);
      else wire.writes.push([`${name}:${message}`]);
    },
    cork(cb: () => void) {
      corked = [];
      cb();
      wire.writes.push(corked);
      corked = undefined;
    },
    close(code: number) {
      ws.ended = code;
      wire.writes.push([`${name}:close ${code}`]);
    },
    subscribe: () => undefined,
    unsubscribe: () => undefined,
    publishToOthers: () => undefined,
    bufferedBytes: () => 100,
    ping: () => undefined,
    data: {},
  };
  return ws;
}

/** The runtime's topic publish stand-in: writes the event to every socket name subscribed. */
function fakeServer(wire: WireLog, subscribers: Record<string, string[]>): EdgeServer {
  return {
    publish(topic: string, message: string) {
      for (const name of subscribers[topic] ?? []) wire.writes.push([`${name}:${message}`]);
    },
    subscribers: (topic: string) => (subscribers[topic] ?? []).length,
  } as unknown as EdgeServer;
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe("WebSocket frames sent outside the runtime's handlers", () => {
  it("wait for the end of the turn and leave corked: one write per socket, in send order", async () => {
    const wire = new WireLog();
    const sends = new CorkedSends();
    const a = new WebSocketSessionSocket(fakeWs(wire, "a"), sends);
    const b = new WebSocketSessionSocket(fakeWs(wire, "b"), sends);
    a.send("ok1");
    b.send("ok1");
    a.send("ok2");
    a.send("ok3");
    expect(wire.writes).toEqual([]);
    await nextTurn();
    expect(wire.writes).toEqual([["a:ok1", "a:ok2", "a:ok3"], ["b:ok1"]]);
  });

  it("counts waiting frames as buffered, so the send-buffer limit sees them", () => {
    const sends = new CorkedSends();
    const a = new WebSocketSessionSocket(fakeWs(new WireLog(), "a"), sends);
    a.send("x".repeat(1000));
    expect(a.bufferedBytes()).toBe(1100);
  });

  it("writes waiting frames before the close frame, and nothing after the socket closed", async () => {
    const wire = new WireLog();
    const sends = new CorkedSends();
    const a = new WebSocketSessionSocket(fakeWs(wire, "a"), sends);
    a.send("error");
    a.close(CloseCode.TooSlow, "slow");
    a.send("late");
    await nextTurn();
    expect(wire.writes).toEqual([["a:error"], [`a:close ${CloseCode.TooSlow}`]]);

    const b = new WebSocketSessionSocket(fakeWs(wire, "b"), sends);
    b.send("lost with the connection");
    b.markClosed();
    await nextTurn();
    expect(wire.writes.flat().filter((frame) => frame.startsWith("b:"))).toEqual([]);
  });

  it("lets no published event overtake a frame sent before it", async () => {
    const wire = new WireLog();
    const sends = new CorkedSends();
    const fanout = new EdgeFanout(fakeServer(wire, { "post:1": ["a"] }), sends);
    const a = new WebSocketSessionSocket(fakeWs(wire, "a"), sends);
    a.send("ok");
    expect(fanout.publish("post:1", "event")).toBe(1);
    a.send("pong");
    await nextTurn();
    expect(wire.writes.flat()).toEqual(["a:ok", "a:event", "a:pong"]);
  });
});
