import { BunEdgeServer } from "../../src/adapters/bun/bun-edge.js";
import { sessionSocketContract } from "../contract/session-socket.contract.js";
import { sseFixture, webSocketFixture } from "../support/edge-sockets.js";

// The edge's sockets over Bun.serve (`npm run test:bun`); the same suite on
// native uWS is test/integration/session-socket.test.ts. Bun runs the
// vitest-style suite as its own `bun:test`.
const createServer = () => new BunEdgeServer();

sessionSocketContract("WebSocketSessionSocket (WebSocket, Bun.serve)", webSocketFixture(createServer));
sessionSocketContract("SseSessionSocket (SSE, Bun.serve)", sseFixture(createServer));
