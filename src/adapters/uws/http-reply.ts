import type { HttpResponse } from "@btc-vision/uwebsockets.js";
import type { HttpRejection } from "../../protocol/codes.js";

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

  constructor(private readonly res: HttpResponse) {
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

  /** Runs `write` corked, if the client is still there; marks the reply answered. */
  corked(write: (res: HttpResponse) => void): void {
    if (!this.isOpen) return;
    this.answered = true;
    this.res.cork(() => write(this.res));
  }
}
