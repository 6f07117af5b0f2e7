import { loadNativeUws } from "../../src/adapters/uws/load-native-uws.js";
import { sessionSocketContract } from "../contract/session-socket.contract.js";
import { sseFixture, webSocketFixture } from "../support/uws-edge-sockets.js";

// The uWS edge's sockets over real connections on loopback; the same suite
// runs on the Bun shim in test/bun/session-socket.bun.ts.
const { uws } = loadNativeUws();

sessionSocketContract("UwsSessionSocket (WebSocket, native uWS)", webSocketFixture(uws));
sessionSocketContract("SseSessionSocket (SSE, native uWS)", sseFixture(uws));
