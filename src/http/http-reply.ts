import type { BodyRead, EdgeRequest, HttpExchange } from "../core/ports/edge.js";
import { httpRateLimited } from "../core/ports/http-route.js";
import { HttpRejection } from "@sobranie/protocol/codes";
import type { Metrics, UpgradeRejectReason } from "../core/ports/metrics.js";

/** Sent with every response: a browser never guesses another content type than the one given. */
const COMMON_HEADERS: Readonly<Record<string, string>> = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
};

/**
 * The JSON/text answers of the HTTP API over one exchange, which may be
 * answered after an await (docs/protocol.md §7). Every answer carries the
 * common headers; an answer after the client left is a no-op.
 */
export class PendingReply {
  constructor(private readonly exchange: HttpExchange) {}

  get isOpen(): boolean {
    return this.exchange.isOpen;
  }

  onAbort(listener: () => void): void {
    this.exchange.onAbort(listener);
  }

  /** See HttpExchange.holdConnection: for a reply that waits for the application; not for upgrades or streams. */
  holdConnection(): void {
    this.exchange.holdConnection();
  }

  /** See HttpExchange.readBody. */
  readBody(maxBytes: number): Promise<BodyRead> {
    return this.exchange.readBody(maxBytes);
  }

  json(status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
    this.text(status, "application/json", JSON.stringify(body), headers);
  }

  reject(rejection: HttpRejection, message: string): void {
    this.json(rejection.status, { error: { code: rejection.code, message } });
  }

  /** 429 with `Retry-After` in whole seconds (rounded up) and `retryAfterMs` in the body. */
  rateLimited(message: string, retryAfterMs: number): void {
    const answer = httpRateLimited(message, retryAfterMs);
    this.json(answer.status, answer.body, answer.headers);
  }

  text(status: number, contentType: string, body: string, headers: Readonly<Record<string, string>> = {}): void {
    this.exchange.respond(status, withCommonHeaders(contentType, headers), body);
  }

  /**
   * Answers `400 bad_request` with `Connection: close` and closes the
   * connection; bytes after this request are never parsed as one. Call in
   * the handler's own turn. The answer is written in the next turn: inside
   * the handler uWS is corked and closes only after parsing the rest of what
   * it read, so a request smuggled behind this one would reach its route.
   * Written later, a request parsed in between makes the runtime close the
   * connection at once (HttpExchange.holdConnection), so it never reaches a
   * route either, and this answer is then not sent.
   */
  refuseAndClose(rejection: HttpRejection, message: string): void {
    this.exchange.holdConnection();
    setImmediate(() => {
      this.exchange.respond(rejection.status, withCommonHeaders("application/json", {}), JSON.stringify({ error: { code: rejection.code, message } }), true);
    });
  }
}

function withCommonHeaders(contentType: string, headers: Readonly<Record<string, string>>): Record<string, string> {
  return { "content-type": contentType, ...COMMON_HEADERS, ...headers };
}

/** The client token: `Authorization: Bearer <jwt>`, else `?token=<jwt>`. Read it before any await. */
export function requestToken(req: EdgeRequest): string | undefined {
  return presentedBearer(req) ?? (req.query("token") || undefined);
}

/** The presented `Authorization: Bearer <credential>`. Read it in the handler's own turn. */
export function presentedBearer(req: EdgeRequest): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(req.header("authorization"))?.[1];
}

/** Answers a refused WebSocket upgrade or SSE stream (`message` or the reason's own), counted by reason. */
export function refuseConnection(reply: PendingReply, metrics: Metrics, reason: UpgradeRejectReason, message?: string): void {
  metrics.upgradeRejected(reason);
  const { rejection, message: fallback } = ADMISSION_REJECTIONS[reason];
  reply.reject(rejection, message ?? fallback);
}

/** What a refused WebSocket upgrade or SSE stream is answered, by reason. */
const ADMISSION_REJECTIONS: Record<UpgradeRejectReason, { rejection: HttpRejection; message: string }> = {
  unauthorized: { rejection: HttpRejection.Unauthorized, message: "a valid token is required" },
  revoked: { rejection: HttpRejection.Unauthorized, message: "token revoked: get a new token" },
  too_many_connections: { rejection: HttpRejection.TooManyConnections, message: "too many connections for this user on this node" },
  capacity: { rejection: HttpRejection.Unavailable, message: "node at capacity, try another" },
  draining: { rejection: HttpRejection.Unavailable, message: "node is draining, reconnect" },
  broker_unavailable: { rejection: HttpRejection.Unavailable, message: "node has lost its message broker, try another" },
};

/**
 * The bounded JSON body every POST route reads: `body over N bytes` (413)
 * past `maxBytes`, `body is not valid JSON` (400); undefined once answered
 * (or the client left).
 */
export async function receiveJson(reply: PendingReply, body: Promise<BodyRead>, maxBytes: number): Promise<{ json: unknown } | undefined> {
  const received = await body;
  if (!received.ok) {
    if (received.reason === "too_large") reply.reject(HttpRejection.TooLarge, `body over ${maxBytes} bytes`);
    return undefined;
  }
  try {
    return { json: JSON.parse(new TextDecoder().decode(received.body)) };
  } catch {
    reply.reject(HttpRejection.BadRequest, "body is not valid JSON");
    return undefined;
  }
}
