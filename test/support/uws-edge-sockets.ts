import WebSocket from "ws";
import type { UwsApi, UwsApp } from "../../src/core/ports/uws-api.js";
import { CloseCode } from "@sobranie/protocol/codes";
import { SSE_PREAMBLE } from "@sobranie/protocol/sse";
import { CorkedSends } from "../../src/adapters/uws/corked-sends.js";
import { SseSessionSocket, SseTopics } from "../../src/adapters/uws/sse-session-socket.js";
import { UwsFanout, UwsSessionSocket } from "../../src/adapters/uws/uws-session-socket.js";
import type { PeerClose, SessionSocketFixture, SocketPair } from "../contract/session-socket.contract.js";
import { SseTestClient } from "./sse-client.js";
import { waitFor } from "./wait-for.js";

/**
 * The SessionSocket implementations of the uWS edge, each behind a bare
 * route on a server of `uws` (the native module on Node, the Bun shim on
 * Bun), wired as src/app/index.ts wires them: one CorkedSends, one SseTopics
 * and one UwsFanout over both. A connection carries `?id=` so the test finds
 * its server-side socket.
 */
class EdgeServer {
  readonly fanout: UwsFanout;
  private readonly app: UwsApp;
  private readonly sockets = new Map<string, { socket: UwsSessionSocket<WsData> | SseSessionSocket; closeCallbacks: number[] }>();
  private port = 0;
  private ids = 0;

  private constructor(private readonly uws: UwsApi) {
    this.app = uws.App();
    const sends = new CorkedSends();
    const sseTopics = new SseTopics();
    this.fanout = new UwsFanout(this.app, sends, sseTopics);
    this.app.ws<WsData>("/ws", {
      compression: uws.DISABLED,
      idleTimeout: 0,
      maxBackpressure: 0,
      closeOnBackpressureLimit: false,
      sendPingsAutomatically: false,
      upgrade: (res, req, context) => {
        const data: WsData = { id: req.getQuery("id") ?? "", socket: undefined };
        res.upgrade(data, req.getHeader("sec-websocket-key"), req.getHeader("sec-websocket-protocol"), req.getHeader("sec-websocket-extensions"), context);
      },
      open: (ws) => {
        const data = ws.getUserData();
        data.socket = new UwsSessionSocket(ws, sends);
        this.sockets.set(data.id, { socket: data.socket, closeCallbacks: [] });
      },
      close: (ws, code) => {
        const data = ws.getUserData();
        data.socket?.markClosed();
        this.sockets.get(data.id)?.closeCallbacks.push(code);
      },
    });
    this.app.get("/sse", (res, req) => {
      const id = req.getQuery("id") ?? "";
      const closeCallbacks: number[] = [];
      const socket = new SseSessionSocket({ res, topics: sseTopics, pendingRefs: [], onClosed: (code) => closeCallbacks.push(code) });
      res.onAborted(() => socket.aborted(CloseCode.Normal));
      res.writeStatus("200 OK").writeHeader("content-type", "text/event-stream; charset=utf-8").write(SSE_PREAMBLE);
      this.sockets.set(id, { socket, closeCallbacks });
    });
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.app.listen("127.0.0.1", 0, (listenSocket) => {
        if (!listenSocket) return reject(new Error("could not listen on 127.0.0.1"));
        this.port = this.uws.us_socket_local_port(listenSocket);
        resolve();
      });
    });
  }

  url(scheme: "ws" | "http", path: string): { id: string; url: string } {
    const id = String(++this.ids);
    return { id, url: `${scheme}://127.0.0.1:${this.port}${path}?id=${id}` };
  }

  async serverSide(id: string): Promise<{ socket: UwsSessionSocket<WsData> | SseSessionSocket; closeCallbacks: number[] }> {
    await waitFor(() => this.sockets.has(id), 10_000, `the server side of connection ${id}`);
    return this.sockets.get(id)!;
  }

  close(): void {
    this.app.close();
  }

  static async start(uws: UwsApi): Promise<EdgeServer> {
    const server = new EdgeServer(uws);
    await server.listen();
    return server;
  }
}

interface WsData {
  readonly id: string;
  socket: UwsSessionSocket<WsData> | undefined;
}

/** UwsSessionSocket over a WebSocket route of `uws`, the client a `ws` WebSocket. */
export function webSocketFixture(uws: UwsApi): () => Promise<SessionSocketFixture> {
  return async () => {
    const server = await EdgeServer.start(uws);
    const clients: WebSocket[] = [];
    return {
      fanout: server.fanout,
      connect: async (): Promise<SocketPair> => {
        const { id, url } = server.url("ws", "/ws");
        const client = new WebSocket(url);
        clients.push(client);
        const received: unknown[] = [];
        let peerClose: PeerClose | undefined;
        client.on("message", (data) => received.push(JSON.parse(String(data))));
        client.on("close", (code, reason) => (peerClose = { code, reason: String(reason) }));
        await new Promise<void>((resolve, reject) => {
          client.once("open", () => resolve());
          client.once("error", reject);
        });
        const { socket, closeCallbacks } = await server.serverSide(id);
        return { socket, received, closeCallbacks, peerClose: () => peerClose, hangUp: () => client.terminate() };
      },
      stop: async () => {
        for (const client of clients) client.terminate();
        server.close();
      },
    };
  };
}

/** SseSessionSocket over a streaming response of `uws`, the client a node:http request. */
export function sseFixture(uws: UwsApi): () => Promise<SessionSocketFixture> {
  return async () => {
    const server = await EdgeServer.start(uws);
    const clients: SseTestClient[] = [];
    return {
      fanout: server.fanout,
      connect: async (): Promise<SocketPair> => {
        const { id, url } = server.url("http", "/sse");
        const client = await SseTestClient.open(url);
        clients.push(client);
        const { socket, closeCallbacks } = await server.serverSide(id);
        const closeMessage = () => client.messages.find((message) => message.data.op === "close")?.data;
        return {
          socket,
          get received() {
            return client.messages.filter((message) => message.data.op !== "close").map((message) => message.data);
          },
          closeCallbacks,
          peerClose: () => {
            const close = closeMessage();
            return close && { code: Number(close.code), reason: String(close.reason) };
          },
          hangUp: () => client.close(),
        };
      },
      stop: async () => {
        for (const client of clients) client.close();
        server.close();
      },
    };
  };
}
