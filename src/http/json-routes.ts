import type { Logger } from "@sobranie/protocol/runtime/logger";
import { HttpRejection } from "@sobranie/protocol/codes";
import { isRetryable } from "@sobranie/protocol/errors";
import type { EdgeServer, HttpExchange } from "../core/ports/edge.js";
import type { HttpRoute, HttpRouteRequest } from "../core/ports/http-route.js";
import type { HttpLimits } from "./http-limits.js";
import { PendingReply } from "./http-reply.js";

/**
 * Attaches runtime-neutral JSON routes (core/ports/http-route.ts: the Pusher
 * REST API and auth endpoints) to the edge: the path, parameters, query and
 * the listed headers are read in the handler's own turn (the request is only
 * valid then), the body is collected up to the route's bound (413 beyond,
 * before `handle` runs), and the answer is written as JSON. A retryable
 * failure of `handle` is answered 503 with the route's `unavailable`, any
 * other 500 (logged).
 */
export function registerJsonRoutes(server: EdgeServer, routes: readonly HttpRoute[], limits: HttpLimits, logger: Logger): void {
  for (const route of routes) {
    const parameterCount = route.pattern.split("/").filter((segment) => segment.startsWith(":")).length;
    server.route(route.method === "GET" ? "get" : "post", route.pattern, (exchange: HttpExchange) => {
      const req = exchange.request;
      const request: Omit<HttpRouteRequest, "body"> = {
        path: req.path,
        parameters: Array.from({ length: parameterCount }, (_, index) => req.param(index) ?? ""),
        query: req.queryString(),
        headers: Object.fromEntries(route.headers.map((name) => [name, req.header(name)])),
        source: limits.sourceOf(req),
      };
      const reply = new PendingReply(exchange);
      if (route.method === "GET") {
        reply.holdConnection();
        return void answer(route, reply, { ...request, body: new Uint8Array(0) }, logger);
      }
      void reply.readBody(route.maxBodyBytes).then((received) => {
        if (received.ok) return answer(route, reply, { ...request, body: received.body }, logger);
        if (received.reason === "too_large") reply.reject(HttpRejection.TooLarge, `body over ${route.maxBodyBytes} bytes`);
      });
    });
  }
}

async function answer(route: HttpRoute, reply: PendingReply, request: HttpRouteRequest, logger: Logger): Promise<void> {
  try {
    const answered = await route.handle(request);
    reply.json(answered.status, answered.body, answered.headers);
  } catch (error) {
    if (isRetryable(error)) return reply.reject(HttpRejection.Unavailable, route.unavailable);
    logger.error({ err: error, route: route.pattern }, "HTTP route failed");
    reply.reject(HttpRejection.Internal, "internal error");
  }
}
