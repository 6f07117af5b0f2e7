import type { UwsRequest, UwsResponse } from "../../core/ports/uws-api.js";
import { HttpRejection } from "@sobranie/protocol/codes";
import type { UpgradeRejectReason } from "../../core/ports/metrics.js";
import { httpRateLimited } from "../../core/ports/http-route.js";

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  202: "Accepted",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Payload Too Large",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** Sent with every response: a browser never guesses another content type than the one given. */
const COMMON_HEADERS: readonly (readonly [string, string])[] = [
  ["cache-control", "no-store"],
  ["x-content-type-options", "nosniff"],
];

/**
 * A response that may be answered after an await. uWS invalidates the
 * response object once the client aborts, so every write checks `aborted`
 * first and happens inside `cork` (required outside the synchronous handler).
 *
 * Pipelining: uWS (20.30 and 20.57, and Bun's fork) closes a connection
 * when it parses the next request while this one's response is pending
 * ("denying async pipelining"), and this response is then never sent. A
 * reply that waits for the application therefore holds the connection
 * (`holdConnection`: uWS reads nothing more from it) until it is answered,
 * and a request body is handed over only in the turn after its last chunk,
 * once uWS has parsed everything it read with it: a request pipelined in the
 * same read has by then closed the connection, and the body comes back
 * `aborted`, before anything was acted on.
 */
export class PendingReply {
  private aborted = false;
  private answered = false;
  private held = false;
  private readonly abortListeners: Array<() => void> = [];

  constructor(private readonly res: UwsResponse) {
    res.onAborted(() => {
      this.aborted = true;
      for (const listener of this.abortListeners) listener();
    });
  }

  get isOpen(): boolean {
    return !this.aborted && !this.answered;
  }

  onAbort(listener: () => void): void {
    this.abortListeners.push(listener);
  }

  /**
   * No further bytes are read from the connection until this reply is
   * answered, so a pipelined request waits instead of making uWS close the
   * connection under this response. While held, a client that leaves is
   * noticed only when the answer is written. Not for WebSocket upgrades or
   * streams (answering releases the hold). A no-op on Bun (see docs/protocol.md §7.2).
   */
  holdConnection(): void {
    if (this.held || !this.isOpen) return;
    this.held = true;
    this.res.pause();
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
    this.corked((res) => {
      writeHead(res, status, contentType, headers).end(body);
    });
  }

  /**
   * Answers `400 bad_request` with `Connection: close` and closes the
   * connection; bytes after this request are never parsed as one. Call in
   * the handler's own turn. The answer is written in the next turn: inside
   * the handler uWS is corked and closes only after parsing the rest of what
   * it read, so a request smuggled behind this one would reach its route.
   * Written later, a request parsed in between makes uWS close the
   * connection at once (see the class comment), so it never reaches a route
   * either, and this answer is then not sent.
   */
  refuseAndClose(rejection: HttpRejection, message: string): void {
    this.holdConnection();
    setImmediate(() => {
      this.corked((res) => {
        writeHead(res, rejection.status, "application/json", {}).end(JSON.stringify({ error: { code: rejection.code, message } }), true);
      });
    });
  }

  /**
   * Collects the request body, up to `maxBytes`. Must be called in the
   * synchronous part of the handler (uWS delivers data only to a handler
   * registered there). Each chunk is copied: uWS reuses it after onData
   * returns. After the last chunk the connection is held (see the class
   * comment) and the body is handed over in the next turn, or `aborted` if
   * the client left or pipelined another request in the same read.
   */
  readBody(maxBytes: number): Promise<{ ok: true; body: Buffer } | { ok: false; reason: "too_large" | "aborted" }> {
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      this.onAbort(() => {
        if (!done) resolve({ ok: false, reason: "aborted" });
        done = true;
      });
      this.res.onData((chunk, isLast) => {
        if (done) return;
        size += chunk.byteLength;
        if (size > maxBytes) {
          done = true;
          return resolve({ ok: false, reason: "too_large" });
        }
        chunks.push(Buffer.from(chunk.slice(0)));
        if (!isLast) return;
        done = true;
        this.holdConnection();
        setImmediate(() => resolve(this.aborted ? { ok: false, reason: "aborted" } : { ok: true, body: Buffer.concat(chunks) }));
      });
    });
  }

  /** Runs `write` corked, if the client is still there; marks the reply answered and releases a held connection. */
  corked(write: (res: UwsResponse) => void): void {
    if (!this.isOpen) return;
    this.answered = true;
    this.res.cork(() => {
      if (this.held) this.res.resume();
      write(this.res);
    });
  }
}

function writeHead(res: UwsResponse, status: number, contentType: string, headers: Readonly<Record<string, string>>): UwsResponse {
  res.writeStatus(`${status} ${STATUS_TEXT[status] ?? ""}`).writeHeader("content-type", contentType);
  for (const [name, value] of COMMON_HEADERS) res.writeHeader(name, value);
  for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
  return res;
}

/** The client token: `Authorization: Bearer <jwt>`, else `?token=<jwt>`. Read it before any await. */
export function requestToken(req: UwsRequest): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(req.getHeader("authorization"));
  return match?.[1] ?? (req.getQuery("token") || undefined);
}

/** What a refused WebSocket upgrade or SSE stream is answered, by reason. */
export const ADMISSION_REJECTIONS: Record<UpgradeRejectReason, { rejection: HttpRejection; message: string }> = {
  unauthorized: { rejection: HttpRejection.Unauthorized, message: "a valid token is required" },
  revoked: { rejection: HttpRejection.Unauthorized, message: "token revoked: get a new token" },
  too_many_connections: { rejection: HttpRejection.TooManyConnections, message: "too many connections for this user on this node" },
  capacity: { rejection: HttpRejection.Unavailable, message: "node at capacity, try another" },
  draining: { rejection: HttpRejection.Unavailable, message: "node is draining, reconnect" },
  broker_unavailable: { rejection: HttpRejection.Unavailable, message: "node has lost its message broker, try another" },
};
