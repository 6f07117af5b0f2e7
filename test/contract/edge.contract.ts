import WebSocket from "ws";
import type { EdgeServer, EdgeWebSocket, HttpExchange, ResponseStream, WebSocketRoute } from "../../src/core/ports/edge.js";
import { RawHttpClient } from "../support/raw-client.js";
import { waitFor } from "../support/wait-for.js";
import type { TestApi } from "../publisher/publisher-cases.js";

/**
 * The edge port's contract (src/core/ports/edge.ts), run on every runtime:
 * `uws-edge.test.ts` (vitest on Node, uWebSockets.js) and
 * `test/bun/edge.bun.ts` (`bun test`, Bun.serve). Each case starts its own
 * server on a free loopback port; clients are real: fetch, `ws`, and a bare
 * TCP socket where those hide what is checked. The test API is the one the
 * publisher suite shares between vitest and `bun:test`.
 */
const CASE_TIMEOUT_MS = 30_000;
const CHUNK = "x".repeat(65_536);

/** A WebSocket route whose handlers other than `upgrade` do nothing unless given. */
function wsRoute<Data>(route: Partial<WebSocketRoute<Data>> & Pick<WebSocketRoute<Data>, "upgrade">): WebSocketRoute<Data> {
  return { maxPayloadBytes: 65_536, open: () => undefined, text: () => undefined, binary: () => undefined, ping: () => undefined, pong: () => undefined, close: () => undefined, ...route };
}

function plain(exchange: HttpExchange, status: number, body: string): void {
  exchange.respond(status, { "content-type": "text/plain" }, body);
}

/** Connects and collects text messages; `opened` rejects on a refused upgrade. */
function client(url: string): { socket: WebSocket; messages: string[]; opened: Promise<void>; closed: Promise<{ code: number; reason: string }> } {
  const socket = new WebSocket(url);
  const messages: string[] = [];
  socket.on("message", (data, isBinary) => {
    if (!isBinary) messages.push(data.toString());
  });
  const opened = new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  return { socket, messages, opened, closed };
}

export function edgeContract({ describe, it, expect, afterEach }: TestApi, createServer: () => EdgeServer): void {
  const test = (name: string, body: () => Promise<void>): void => it(name, body, CASE_TIMEOUT_MS);
  let open: EdgeServer[] = [];
  afterEach(async () => {
    for (const server of open) server.close();
    open = [];
  });
  const start = async (register: (server: EdgeServer) => void): Promise<{ server: EdgeServer; port: number; http: string; ws: string }> => {
    const server = createServer();
    register(server);
    const port = await server.listen("127.0.0.1", 0);
    open.push(server);
    return { server, port, http: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}` };
  };

  describe("the edge port: HTTP", () => {
    test("routes by pattern: a static segment before a :name one, params raw by position, the fallback for the rest", async () => {
      const { http } = await start((server) => {
        server.route("get", "/a/:name", (exchange) => plain(exchange, 200, `param ${exchange.request.param(0)}`));
        server.route("get", "/a/static", (exchange) => plain(exchange, 200, "static"));
        server.route("post", "/a/:name", (exchange) => plain(exchange, 200, `post ${exchange.request.param(0)}`));
        server.webSocket("/ws", wsRoute({ upgrade: (exchange) => exchange.accept({}) }));
        server.fallback((exchange) => plain(exchange, 404, `fallback ${exchange.request.method} ${exchange.request.path}`));
      });
      const text = async (path: string, method = "GET") => {
        const response = await fetch(`${http}${path}`, { method });
        return `${response.status} ${await response.text()}`;
      };
      expect(await text("/a/static")).toBe("200 static");
      expect(await text("/a/room%3A7")).toBe("200 param room%3A7");
      expect(await text("/a/x", "POST")).toBe("200 post x");
      expect(await text("/a/x", "DELETE")).toBe("404 fallback delete /a/x");
      expect(await text("/a/static/deeper")).toBe("404 fallback get /a/static/deeper");
      expect(await text("/ws")).toBe("404 fallback get /ws");
    });

    test("hands over the method, the path, query values (percent-decoded, + as a space; absent when empty or malformed), the query as sent, headers and the peer's address", async () => {
      const { http } = await start((server) => {
        server.route("get", "/q", (exchange) => {
          const req = exchange.request;
          const seen: string[] = [];
          req.forEachHeader((name, value) => {
            if (name === "x-one") seen.push(value);
          });
          const query = Object.fromEntries(["channels", "token", "plus", "bad", "empty", "equals", "twice", "missing"].map((key) => [key, req.query(key) ?? null]));
          exchange.respond(200, { "content-type": "application/json" }, JSON.stringify({ method: req.method, path: req.path, query, queryString: req.queryString(), header: req.header("x-one"), absent: req.header("x-absent"), seen, address: req.remoteAddress() }));
        });
      });
      const response = await fetch(`${http}/q?channels=post%3A1,room%3A2&token=a+b&plus=%2B%20x&bad=%E0%A4%A&empty&equals=&twice=1&twice=2`, { headers: { "X-One": "1" } });
      const query = { channels: "post:1,room:2", token: "a b", plus: "+ x", bad: null, empty: null, equals: null, twice: "1", missing: null };
      const queryString = "channels=post%3A1,room%3A2&token=a+b&plus=%2B%20x&bad=%E0%A4%A&empty&equals=&twice=1&twice=2";
      expect(await response.json()).toEqual({ method: "get", path: "/q", query, queryString, header: "1", absent: "", seen: ["1"], address: "127.0.0.1" });
    });

    test("answers once with the status and headers given, after an await too; a second answer is a no-op", async () => {
      const { http } = await start((server) => {
        server.route("get", "/later", (exchange) => {
          setTimeout(() => {
            exchange.respond(202, { "content-type": "text/plain", "x-test": "yes" }, "first");
            plain(exchange, 500, "second");
            expect(exchange.stream(200, {})).toBe(undefined);
            expect(exchange.isOpen).toBe(false);
          }, 10);
        });
      });
      const response = await fetch(`${http}/later`);
      expect([response.status, response.headers.get("x-test"), await response.text()]).toEqual([202, "yes", "first"]);
    });

    test("closes the connection after an answer with closeConnection", async () => {
      const { port } = await start((server) => {
        server.route("get", "/bye", (exchange) => exchange.respond(400, { "content-type": "text/plain" }, "bye", true));
      });
      const raw = await RawHttpClient.get(port, "/bye", {});
      await waitFor(() => raw.ended, 10_000, "the server to close the connection");
      expect(raw.status).toBe(400);
      expect(raw.start.toLowerCase().includes("connection: close")).toBe(true);
    });

    test("reads a body up to its bound, and refuses a longer one as too_large", async () => {
      const { http } = await start((server) => {
        server.route("post", "/body", (exchange) => {
          void exchange.readBody(16).then((read) => plain(exchange, read.ok ? 200 : 413, read.ok ? new TextDecoder().decode(read.body) : read.reason));
        });
      });
      const post = async (body: string) => {
        const response = await fetch(`${http}/body`, { method: "POST", body });
        return `${response.status} ${await response.text()}`;
      };
      expect(await post("héllo")).toBe("200 héllo");
      expect(await post("")).toBe("200 ");
      expect(await post("x".repeat(100_000))).toBe("413 too_large");
    });
  });

  describe("the edge port: streams", () => {
    test("says false while the client does not read, still sends every byte, and ends", async () => {
      let written = 0;
      let heldBack = false;
      let stream: ResponseStream | undefined;
      const { port } = await start((server) => {
        server.route("get", "/stream", (exchange) => {
          stream = exchange.stream(200, { "content-type": "text/event-stream" });
        });
      });
      const raw = await RawHttpClient.get(port, "/stream", {});
      raw.pause();
      await waitFor(() => stream !== undefined, 10_000, "the stream to start");
      // Written a turn at a time, as events arrive, until the runtime holds bytes back (bounded: 1 GiB).
      while (!heldBack && written < 16_384 * CHUNK.length) {
        heldBack = !stream!.write(CHUNK);
        written += CHUNK.length;
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(heldBack).toBe(true);
      stream!.end();
      raw.resume();
      await waitFor(() => raw.end.endsWith("0\r\n\r\n"), 20_000, "the whole stream to arrive");
      expect(raw.bytes).toBeGreaterThan(written);
      raw.close();
    });

    test("tells the route once when the client leaves a stream; writes after it are no-ops", async () => {
      let aborts = 0;
      let stream: ResponseStream | undefined;
      const { port } = await start((server) => {
        server.route("get", "/stream", (exchange) => {
          exchange.onAbort(() => (aborts += 1));
          stream = exchange.stream(200, { "content-type": "text/event-stream" });
          stream?.write(": hello\n\n");
        });
      });
      const raw = await RawHttpClient.get(port, "/stream", {});
      await waitFor(() => raw.start.includes(": hello"), 10_000, "the first chunk");
      raw.close();
      await waitFor(() => aborts === 1, 10_000, "the abort");
      expect(stream!.write("late")).toBe(false);
      stream!.end();
      expect(aborts).toBe(1);
    });
  });

  describe("the edge port: WebSockets", () => {
    test("accepts with the route's data in the handler's turn or after an await, and refuses with a status", async () => {
      const { ws, port } = await start((server) => {
        server.webSocket<{ mode: string }>(
          "/ws",
          wsRoute({
            upgrade: (exchange) => {
              const mode = exchange.request.query("mode") ?? "";
              if (mode === "refuse") return plain(exchange, 401, "no");
              if (mode === "now") return exchange.accept({ mode });
              setTimeout(() => exchange.accept({ mode }), 10);
            },
            open: (socket) => socket.send(`open ${socket.data.mode}`),
          }),
        );
      });
      for (const mode of ["now", "later"]) {
        const peer = client(`${ws}/ws?mode=${mode}`);
        await peer.opened;
        await waitFor(() => peer.messages.length > 0, 10_000, "the open message");
        expect(peer.messages).toEqual([`open ${mode}`]);
        peer.socket.close();
      }
      const refused = await RawHttpClient.websocket(port, "/ws?mode=refuse");
      await waitFor(() => refused.status !== undefined, 10_000, "the refusal");
      expect(refused.status).toBe(401);
      refused.close();
    });

    test("hands text frames over decoded with their UTF-8 length, binary ones by length", async () => {
      const { ws } = await start((server) => {
        server.webSocket(
          "/ws",
          wsRoute({
            upgrade: (exchange) => exchange.accept({}),
            text: (socket, text, bytes) => socket.send(`${text}|${bytes}`),
            binary: (socket, bytes) => socket.send(`binary|${bytes}`),
          }),
        );
      });
      const peer = client(`${ws}/ws`);
      await peer.opened;
      peer.socket.send("héllo 👋");
      peer.socket.send(new Uint8Array(5));
      await waitFor(() => peer.messages.length === 2, 10_000, "both answers");
      expect(peer.messages).toEqual(["héllo 👋|11", "binary|5"]);
      peer.socket.close();
    });

    test("closes with the code given, tells the route the client's code, and makes calls after close no-ops", async () => {
      const codes: number[] = [];
      const { ws } = await start((server) => {
        server.webSocket(
          "/ws",
          wsRoute({
            upgrade: (exchange) => exchange.accept({}),
            text: (socket, text) => {
              if (text === "close") socket.close(4001, "bye");
            },
            close: (socket, code) => {
              codes.push(code);
              socket.send("late");
              socket.subscribe("t");
              socket.close(4002, "again");
              expect(socket.bufferedBytes()).toBe(0);
            },
          }),
        );
      });
      const closedByServer = client(`${ws}/ws`);
      await closedByServer.opened;
      closedByServer.socket.send("close");
      expect(await closedByServer.closed).toEqual({ code: 4001, reason: "bye" });
      const closedByClient = client(`${ws}/ws`);
      await closedByClient.opened;
      closedByClient.socket.close(4003, "leaving");
      await waitFor(() => codes.length === 2, 10_000, "both close handlers");
      expect(codes).toEqual([4001, 4003]);
    });

    test("publishes to a topic's subscribers natively, and counts them", async () => {
      const sockets: EdgeWebSocket<unknown>[] = [];
      const { ws, server } = await start((edge) => {
        edge.webSocket(
          "/ws",
          wsRoute({
            upgrade: (exchange) => exchange.accept({}),
            open: (socket) => {
              socket.subscribe("room:1");
              sockets.push(socket);
            },
            text: (socket, text) => {
              if (text === "leave") socket.unsubscribe("room:1");
              socket.send("left");
            },
          }),
        );
      });
      const a = client(`${ws}/ws`);
      const b = client(`${ws}/ws`);
      await Promise.all([a.opened, b.opened]);
      await waitFor(() => sockets.length === 2, 10_000, "both opens");
      expect(server.subscribers("room:1")).toBe(2);
      server.publish("room:1", "event");
      await waitFor(() => a.messages.length === 1 && b.messages.length === 1, 10_000, "the event on both");
      b.socket.send("leave");
      await waitFor(() => b.messages.length === 2, 10_000, "the unsubscribe");
      expect(server.subscribers("room:1")).toBe(1);
      expect(server.subscribers("room:2")).toBe(0);
      a.socket.close();
      b.socket.close();
    });

    test("publishes from a socket to the topic's other subscribers, never back to itself", async () => {
      const { ws } = await start((edge) => {
        edge.webSocket(
          "/ws",
          wsRoute({
            upgrade: (exchange) => exchange.accept({}),
            open: (socket) => socket.subscribe("room:1"),
            text: (socket, text) => socket.publishToOthers("room:1", `from ${text}`),
          }),
        );
      });
      const a = client(`${ws}/ws`);
      const b = client(`${ws}/ws`);
      const c = client(`${ws}/ws`);
      await Promise.all([a.opened, b.opened, c.opened]);
      a.socket.send("a");
      await waitFor(() => b.messages.length === 1 && c.messages.length === 1, 10_000, "the others get it");
      c.socket.send("c");
      await waitFor(() => a.messages.length === 1 && b.messages.length === 2, 10_000, "the others get the second");
      expect(a.messages).toEqual(["from c"]);
      expect(b.messages).toEqual(["from a", "from c"]);
      expect(c.messages).toEqual(["from a"]);
      for (const one of [a, b, c]) one.socket.close();
    });

    test("publishes from a socket to a topic it has not joined: every subscriber gets it", async () => {
      const { ws } = await start((edge) => {
        edge.webSocket(
          "/ws",
          wsRoute({
            upgrade: (exchange) => exchange.accept({ joins: exchange.request.query("join") === "1" }),
            open: (socket) => {
              if ((socket.data as { joins: boolean }).joins) socket.subscribe("room:1");
            },
            text: (socket, text) => socket.publishToOthers("room:1", `from ${text}`),
          }),
        );
      });
      const a = client(`${ws}/ws?join=1`);
      const b = client(`${ws}/ws?join=1`);
      const outsider = client(`${ws}/ws`);
      await Promise.all([a.opened, b.opened, outsider.opened]);
      outsider.socket.send("outside");
      await waitFor(() => a.messages.length === 1 && b.messages.length === 1, 10_000, "both subscribers get it");
      expect(outsider.messages).toEqual([]);
      for (const one of [a, b, outsider]) one.socket.close();
    });

    test("sends a WebSocket ping on `ping`, and the client's pong reaches the route's `pong`", async () => {
      const { ws } = await start((edge) => {
        edge.webSocket(
          "/ws",
          wsRoute({
            upgrade: (exchange) => exchange.accept({}),
            text: (socket) => socket.ping(),
            pong: (socket) => socket.send("pong heard"),
          }),
        );
      });
      const a = client(`${ws}/ws`);
      await a.opened;
      let pinged = 0;
      a.socket.on("ping", () => (pinged += 1));
      a.socket.send("ping me");
      await waitFor(() => a.messages.length === 1, 10_000, "the pong reached the route");
      expect(pinged).toBe(1);
      expect(a.messages).toEqual(["pong heard"]);
      a.socket.close();
    });

    test("serves several WebSocket paths, each socket on its own route", async () => {
      const { ws } = await start((server) => {
        for (const name of ["one", "two"]) {
          server.webSocket(`/${name}/:key`, wsRoute({ upgrade: (exchange) => exchange.accept({ key: exchange.request.param(0) }), open: (socket) => socket.send(`${name} ${(socket.data as { key: string }).key}`), text: (socket, text) => socket.send(`${name} got ${text}`) }));
        }
      });
      const one = client(`${ws}/one/k1`);
      const two = client(`${ws}/two/k2`);
      await Promise.all([one.opened, two.opened]);
      one.socket.send("a");
      two.socket.send("b");
      await waitFor(() => one.messages.length === 2 && two.messages.length === 2, 10_000, "both routes' answers");
      expect([one.messages, two.messages]).toEqual([
        ["one k1", "one got a"],
        ["two k2", "two got b"],
      ]);
      one.socket.close();
      two.socket.close();
    });
  });
}
