import { createServer } from "node:http";
import { WebSocket, WebSocketServer } from "ws";
import { startBrokerFed } from "./broker-fed.js";

/**
 * The seedWs baseline: what the seed document describes — a `ws` server that
 * keeps a set of sockets per channel and, for every event consumed from
 * RabbitMQ, loops over that set calling `ws.send`. It binds its own exclusive
 * queue to the events exchange, one binding per channel with subscribers.
 *
 * Started like the gateway (broker-fed.ts; `GET /readyz`, path
 * `/realtime/ws`), so `--gateway-stub` can put it in the gateway's place to
 * exercise the harness before the gateway exists. It does not check tokens.
 */

const WELCOME = JSON.stringify({ op: "welcome", session: "seed", node: "seed-ws", heartbeatMs: 25_000, ttlMs: 60_000, maxFrameBytes: 65_536 });
const subscribers = new Map<string, Set<WebSocket>>();
let ready = false;

const { port, channel, exchange, queue } = await startBrokerFed();

await channel.consume(
  queue,
  (message) => {
    if (message === null) return;
    // routing key `post.bench3.bench.tick` → channel `post:bench3`
    const [namespace, id] = message.fields.routingKey.split(".");
    const sockets = subscribers.get(`${namespace}:${id}`);
    if (!sockets || sockets.size === 0) return;
    let event: { id?: unknown; type?: unknown; data?: unknown };
    try {
      event = JSON.parse(message.content.toString("utf8")) as typeof event;
    } catch {
      return;
    }
    const frame = JSON.stringify({ op: "event", channel: `${namespace}:${id}`, id: event.id, type: event.type, data: event.data, ts: new Date().toISOString() });
    for (const ws of sockets) ws.send(frame);
  },
  { noAck: true },
);

const server = createServer((request, response) => {
  const ok = request.url === "/healthz" || (request.url === "/readyz" && ready);
  response.writeHead(ok ? 200 : 503).end(ok ? "ok" : "not ready");
});
const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 64 * 1024 });

wss.on("connection", (ws) => {
  const mine = new Set<string>();
  ws.send(WELCOME);
  ws.on("message", (data: Buffer) => {
    let frame: { op?: unknown; ref?: unknown; channel?: unknown };
    try {
      frame = JSON.parse(data.toString("utf8")) as typeof frame;
    } catch {
      return;
    }
    if (frame.op === "subscribe" && typeof frame.channel === "string") {
      void subscribe(ws, frame.channel, mine).then(() => ws.send(JSON.stringify({ op: "ok", ref: frame.ref, recovered: false, missed: 0 })));
    } else if (frame.op === "ping") {
      ws.send(JSON.stringify({ op: "pong", ref: frame.ref }));
    }
  });
  ws.on("close", () => {
    for (const name of mine) subscribers.get(name)?.delete(ws);
  });
});

async function subscribe(ws: WebSocket, name: string, mine: Set<string>): Promise<void> {
  let sockets = subscribers.get(name);
  if (!sockets) {
    sockets = new Set();
    subscribers.set(name, sockets);
    await channel.bindQueue(queue, exchange, `${name.replace(":", ".")}.#`);
  }
  sockets.add(ws);
  mine.add(name);
}

server.listen(port, "127.0.0.1", () => {
  ready = true;
});
