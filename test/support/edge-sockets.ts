import WebSocket from "ws";
import type { EdgeServer } from "../../src/core/ports/edge.js";
import { CloseCode } from "@sobranie/protocol/codes";
import { SSE_PREAMBLE } from "@sobranie/protocol/sse";
import { CorkedSends } from "../../src/http/corked-sends.js";
import { SseSessionSocket, SseTopics } from "../../src/http/sse-session-socket.js";
import { EdgeFanout, WebSocketSessionSocket } from "../../src/http/websocket-session-socket.js";
import type { PeerClose, SessionSocketFixture, SocketPair } from "../contract/session-socket.contract.js";
import { SseTestClient } from "./sse-client.js";
import { waitFor } from "./wait-for.js";

/**
 * The SessionSocket implementations of the edge, each behind a bare route
 * on an edge server (uWebSockets.js on Node, Bun.serve on Bun), wired as
 * src/app/index.ts wires them: one CorkedSends, one SseTopics and one
 * EdgeFanout over both. A connection carries `?id=` so the test finds its
 * server-side socket.
 */
class SocketServer {
  readonly fanout: EdgeFanout;
  private readonly sockets = new Map<string, { socket: WebSocketSessionSocket<WsData> | SseSessionSocket; closeCallbacks: number[] }>();
  private port = 0;
  private ids = 0;

  private constructor(private readonly server: EdgeServer) {
    const sends = new CorkedSends();
    const sseTopics = new SseTopics();
    this.fanout = new EdgeFanout(server, sends, sseTopics);
    server.webSocket<WsData>("/ws", {
      maxPayloadBytes: 65_536,
      upgrade: (exchange) => exchange.accept({ id: exchange.request.query("id") ?? "", socket: undefined }),
      pong: () => undefined,
      open: (ws) => {
        ws.data.socket = new WebSocketSessionSocket(ws, sends);
        this.sockets.set(ws.data.id, { socket: ws.data.socket, closeCallbacks: [] });
      },
      text: () => undefined,
      binary: () => undefined,
      ping: () => undefined,
      close: (ws, code) => {
        ws.data.socket?.markClosed();
        this.sockets.get(ws.data.id)?.closeCallbacks.push(code);
      },
    });
    server.route("get", "/sse", (exchange) => {
      const id = exchange.request.query("id") ?? "";
      const closeCallbacks: number[] = [];
      const stream = exchange.stream(200, { "content-type": "text/event-stream; charset=utf-8" })!;
      stream.write(SSE_PREAMBLE);
      const socket = new SseSessionSocket({ stream, topics: sseTopics, pendingRefs: [], onClosed: (code) => closeCallbacks.push(code) });
      exchange.onAbort(() => socket.aborted(CloseCode.Normal));
      this.sockets.set(id, { socket, closeCallbacks });
    });
  }

  url(scheme: "ws" | "http", path: string): { id: string; url: string } {
    const id = String(++this.ids);
    return { id, url: `${scheme}://127.0.0.1:${this.port}${path}?id=${id}` };
  }

  async serverSide(id: string): Promise<{ socket: WebSocketSessionSocket<WsData> | SseSessionSocket; closeCallbacks: number[] }> {
    await waitFor(() => this.sockets.has(id), 10_000, `the server side of connection ${id}`);
    return this.sockets.get(id)!;
  }

  close(): void {
    this.server.close();
  }

  static async start(createServer: () => EdgeServer): Promise<SocketServer> {
    const server = new SocketServer(createServer());
    server.port = await server.server.listen("127.0.0.1", 0);
    return server;
  }
}

interface WsData {
  readonly id: string;
  socket: WebSocketSessionSocket<WsData> | undefined;
}

/** WebSocketSessionSocket over a WebSocket route of an edge server, the client a `ws` WebSocket. */
export function webSocketFixture(createServer: () => EdgeServer): () => Promise<SessionSocketFixture> {
  return async () => {
    const server = await SocketServer.start(createServer);
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

/** SseSessionSocket over a streaming response of an edge server, the client a node:http request. */
export function sseFixture(createServer: () => EdgeServer): () => Promise<SessionSocketFixture> {
  return async () => {
    const server = await SocketServer.start(createServer);
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
