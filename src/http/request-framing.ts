import type { EdgeRequest, EdgeServer, HttpExchange } from "../core/ports/edge.js";
import { HttpRejection } from "@sobranie/protocol/codes";
import { PendingReply } from "./http-reply.js";

const DECIMAL = /^\d+$/;

/**
 * Why the request's body framing is ambiguous (RFC 9112 §6.3), or undefined.
 * A proxy in front may read such a request's body differently from uWS
 * (which takes the first Content-Length), and what one of them takes for
 * the body the other takes for a second request: request smuggling. Refused:
 * more than one Content-Length (Bun joins repeats into one "3, 10"), a
 * Content-Length that is not a plain decimal, Content-Length together with
 * Transfer-Encoding (uWS 20.30 closes that one itself before any handler).
 * Reads `req` synchronously, as every handler must.
 */
export function framingProblem(req: EdgeRequest): string | undefined {
  let lengths = 0;
  let decimal = true;
  let transferEncoding = false;
  req.forEachHeader((name, value) => {
    if (name === "content-length") {
      lengths += 1;
      decimal &&= DECIMAL.test(value);
    } else if (name === "transfer-encoding") transferEncoding = true;
  });
  if (lengths > 1) return "more than one Content-Length header";
  if (!decimal) return "Content-Length must be a plain decimal number";
  if (lengths === 1 && transferEncoding) return "Content-Length and Transfer-Encoding together";
  return undefined;
}

/**
 * `server` with every HTTP route and WebSocket upgrade behind the framing
 * check: a refused request gets 400 `bad_request` and its connection is
 * closed (PendingReply.refuseAndClose), before any route sees it.
 */
export function withFramingCheck(server: EdgeServer): EdgeServer {
  const framed = <Exchange extends HttpExchange>(handler: (exchange: Exchange) => void) =>
    (exchange: Exchange): void => {
      const problem = framingProblem(exchange.request);
      if (problem === undefined) return handler(exchange);
      new PendingReply(exchange).refuseAndClose(HttpRejection.BadRequest, problem);
    };
  return {
    route: (method, pattern, handler) => server.route(method, pattern, framed(handler)),
    webSocket: (pattern, route) => server.webSocket(pattern, { ...route, upgrade: framed((exchange) => route.upgrade(exchange)) }),
    fallback: (handler) => server.fallback(framed(handler)),
    listen: (host, port) => server.listen(host, port),
    stopListening: () => server.stopListening(),
    close: () => server.close(),
    publish: (topic, text) => server.publish(topic, text),
    subscribers: (topic) => server.subscribers(topic),
  };
}
