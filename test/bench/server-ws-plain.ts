import { createServer } from "node:http";
import { WebSocketServer } from "ws";

/**
 * The plain `ws` baseline of the idle and connect scenarios: accepts
 * WebSocket connections on `/realtime/ws` and holds them, nothing else (no
 * auth, no frames, no broker). `GET /readyz` answers 200, `GET /memory` the
 * process's `memoryUsage()` (after a GC when run with --expose-gc; it is not).
 * Exits when its stdin closes (the runner is gone), on SIGTERM, and after
 * `BENCH_HARD_TIMEOUT_MS`.
 */

const port = Number(process.env.PORT ?? "0");
setTimeout(() => process.exit(2), Number(process.env.BENCH_HARD_TIMEOUT_MS ?? "600000")).unref();
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
process.on("SIGTERM", () => process.exit(0));

const server = createServer((request, response) => {
  if (request.url === "/memory") return void response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(process.memoryUsage()));
  const ok = request.url === "/healthz" || request.url === "/readyz";
  response.writeHead(ok ? 200 : 404).end(ok ? "ok" : "not found");
});
const wss = new WebSocketServer({ server, path: "/realtime/ws", perMessageDeflate: false, clientTracking: true });
wss.on("connection", (ws) => ws.on("error", () => undefined));
server.listen(port, "127.0.0.1");
