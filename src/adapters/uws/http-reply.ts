import type { UwsRequest, UwsResponse } from "./uws-api.js";
import { HttpRejection } from "../../protocol/codes.js";
import type { UpgradeRejectReason } from "../../core/ports/metrics.js";

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  202: "Accepted",
  400: "Bad Request",
  401: "Unauthorized",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Payload Too Large",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/**
 * A response that may be answered after an await. uWS invalidates the
 * response object once the client aborts, so every write checks `aborted`
 * first and happens inside `cork` (required outside the synchronous handler).
 */
export class PendingReply {
  private aborted = false;
  private answered = false;
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

  json(status: number, body: unknown): void {
    this.text(status, "application/json", JSON.stringify(body));
  }

  reject(rejection: HttpRejection, message: string): void {
    this.json(rejection.status, { error: { code: rejection.code, message } });
  }

  text(status: number, contentType: string, body: string): void {
    if (!this.isOpen) return;
    this.answered = true;
    this.res.cork(() => {
      this.res
        .writeStatus(`${status} ${STATUS_TEXT[status] ?? ""}`)
        .writeHeader("content-type", contentType)
        .writeHeader("cache-control", "no-store")
        .end(body);
    });
  }

  /**
   * Collects the request body, up to `maxBytes`. Must be called in the
   * synchronous part of the handler (uWS delivers data only to a handler
   * registered there). Each chunk is copied: uWS reuses it after onData returns.
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
        if (isLast) {
          done = true;
          resolve({ ok: true, body: Buffer.concat(chunks) });
        }
      });
    });
  }

  /** Runs `write` corked, if the client is still there; marks the reply answered. */
  corked(write: (res: UwsResponse) => void): void {
    if (!this.isOpen) return;
    this.answered = true;
    this.res.cork(() => write(this.res));
  }
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
