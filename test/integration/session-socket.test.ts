import { loadNativeUws } from "../../src/adapters/uws/load-native-uws.js";
import { UwsEdgeServer } from "../../src/adapters/uws/uws-edge.js";
import { sessionSocketContract } from "../contract/session-socket.contract.js";
import { sseFixture, webSocketFixture } from "../support/edge-sockets.js";

// The edge's sockets over real connections on loopback, on uWebSockets.js;
// the same suite runs on Bun.serve in test/bun/session-socket.bun.ts.
const { uws } = loadNativeUws();
const createServer = () => new UwsEdgeServer(uws);

sessionSocketContract("WebSocketSessionSocket (WebSocket, native uWS)", webSocketFixture(createServer));
sessionSocketContract("SseSessionSocket (SSE, native uWS)", sseFixture(createServer));
