import type { UwsApp, UwsHttpHandler, UwsListenSocket, UwsRequest, UwsWebSocketBehavior } from "../../core/ports/uws-api.js";
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
export function framingProblem(req: UwsRequest): string | undefined {
  let lengths = 0;
  let decimal = true;
  let transferEncoding = false;
  req.forEach((name, value) => {
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
 * `app` with every HTTP route and the WebSocket upgrade behind the framing
 * check: a refused request gets 400 `bad_request` and its connection is
 * closed (PendingReply.refuseAndClose), before any route sees it.
 */
export function withFramingCheck(app: UwsApp): UwsApp {
  const guard =
    (handler: UwsHttpHandler): UwsHttpHandler =>
    (res, req) => {
      const problem = framingProblem(req);
      if (problem === undefined) return handler(res, req);
      new PendingReply(res).refuseAndClose(HttpRejection.BadRequest, problem);
    };
  const guarded: UwsApp = {
    get: (pattern, handler) => (app.get(pattern, guard(handler)), guarded),
    post: (pattern, handler) => (app.post(pattern, guard(handler)), guarded),
    any: (pattern, handler) => (app.any(pattern, guard(handler)), guarded),
    ws: <UserData>(pattern: string, behavior: UwsWebSocketBehavior<UserData>) => {
      const { upgrade } = behavior;
      app.ws(pattern, upgrade ? { ...behavior, upgrade: (res, req, context) => guard((r, q) => upgrade(r, q, context))(res, req) } : behavior);
      return guarded;
    },
    listen: (host: string, port: number, cb: (listenSocket: UwsListenSocket | false) => void) => (app.listen(host, port, cb), guarded),
    close: () => (app.close(), guarded),
    publish: (topic, message, isBinary, compress) => app.publish(topic, message, isBinary, compress),
    numSubscribers: (topic) => app.numSubscribers(topic),
  };
  return guarded;
}
