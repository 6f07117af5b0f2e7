import { createBunUws } from "../../src/adapters/bun/bun-uws.js";
import { sessionSocketContract } from "../contract/session-socket.contract.js";
import { sseFixture, webSocketFixture } from "../support/uws-edge-sockets.js";

// The uWS edge's sockets over the Bun shim (`npm run test:bun`); the same
// suite on native uWS is test/integration/session-socket.test.ts. Bun runs
// the vitest-style suite as its own `bun:test`.
const uws = createBunUws();

sessionSocketContract("UwsSessionSocket (WebSocket, Bun.serve)", webSocketFixture(uws));
sessionSocketContract("SseSessionSocket (SSE, Bun.serve)", sseFixture(uws));
