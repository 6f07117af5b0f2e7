import type { HttpRoute, HttpRouteRequest } from "../../core/ports/http-route.js";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { UwsApp, UwsRequest, UwsResponse } from "../../core/ports/uws-api.js";
import { HttpRejection } from "@sobranie/protocol/codes";
import { isRetryable } from "@sobranie/protocol/errors";
import type { HttpLimits } from "./http-limits.js";
import { PendingReply } from "./http-reply.js";

export interface HttpRoutesDeps {
  readonly app: UwsApp;
  readonly limits: HttpLimits;
  readonly logger: Logger;
}

/**
 * Attaches runtime-neutral routes (core/ports/http-route.ts) to uWS: the
 * path, parameters, query and the listed headers are read in the handler's
 * own turn (uWS invalidates the request after it), the body is collected up
 * to the route's bound, and the answer is written as JSON. A retryable
 * failure of `handle` is answered 503 with the route's `unavailable`, any
 * other 500 (logged).
 */
export function registerHttpRoutes(deps: HttpRoutesDeps, routes: readonly HttpRoute[]): void {
  for (const route of routes) {
    const parameterCount = route.pattern.split("/").filter((segment) => segment.startsWith(":")).length;
    const handler = (res: UwsResponse, req: UwsRequest): void => {
      const request: Omit<HttpRouteRequest, "body"> = {
        path: req.getUrl(),
        parameters: Array.from({ length: parameterCount }, (_, index) => req.getParameter(index) ?? ""),
        query: req.getQuery() ?? "",
        headers: Object.fromEntries(route.headers.map((name) => [name, req.getHeader(name)])),
        source: deps.limits.sourceOf(res, req),
      };
      const reply = new PendingReply(res);
      if (route.method === "GET") {
        reply.holdConnection();
        return void answer(deps, route, reply, { ...request, body: new Uint8Array(0) });
      }
      const body = reply.readBody(route.maxBodyBytes);
      void body.then((received) => {
        if (received.ok) return answer(deps, route, reply, { ...request, body: received.body });
        if (received.reason === "too_large") reply.reject(HttpRejection.TooLarge, `body over ${route.maxBodyBytes} bytes`);
      });
    };
    if (route.method === "GET") deps.app.get(route.pattern, handler);
    else deps.app.post(route.pattern, handler);
  }
}

async function answer(deps: HttpRoutesDeps, route: HttpRoute, reply: PendingReply, request: HttpRouteRequest): Promise<void> {
  try {
    const answered = await route.handle(request);
    reply.json(answered.status, answered.body, answered.headers);
  } catch (error) {
    if (isRetryable(error)) return reply.reject(HttpRejection.Unavailable, route.unavailable);
    deps.logger.error({ err: error, route: route.pattern }, "HTTP route failed");
    reply.reject(HttpRejection.Internal, "internal error");
  }
}
