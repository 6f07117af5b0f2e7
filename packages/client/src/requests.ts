import type { IncomingFrame, Transport } from "./transports.js";
import { RealtimeError, type ClientRequest } from "./types.js";

/** A reply to a request: `ok` or `error`, matched to it by `ref`. */
export type ReplyFrame = Extract<IncomingFrame, { op: "ok" | "error" }>;

export interface PendingRequestsDeps {
  /** The current connection's transport, read at each send. */
  transport(): Transport | undefined;
  /** A request without a reply in this time is rejected with `timeout`. */
  readonly timeoutMs: number;
}

interface InFlight {
  resolve(frame: Record<string, unknown>): void;
  reject(error: RealtimeError): void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * Requests over WebSocket and their replies: every request gets a ref unique
 * for the client's lifetime, and settles exactly once — with its reply, with
 * `timeout`, or with the error of the connection that ended under it.
 * Requests made before `welcome` wait for it.
 */
export class PendingRequests {
  private nextRef = 0;
  private readonly inFlight = new Map<number, InFlight>();
  private waiting: Array<{ resolve(): void; reject(error: RealtimeError): void }> = [];

  constructor(private readonly deps: PendingRequestsDeps) {}

  /** Sends `frame` with a new ref; rejects with `connection_lost` at once when the transport cannot send. */
  send(frame: ClientRequest): Promise<Record<string, unknown>> {
    const ref = ++this.nextRef;
    return new Promise((resolve, reject) => {
      if (!this.deps.transport()?.send({ ...frame, ref })) return reject(new RealtimeError("connection_lost", "not connected"));
      const timer = setTimeout(() => {
        this.inFlight.delete(ref);
        reject(new RealtimeError("timeout", `no reply to ${frame.op} within the request timeout`));
      }, this.deps.timeoutMs);
      this.inFlight.set(ref, { resolve, reject, timer });
    });
  }

  /** Settles request `ref` with its reply `frame`; a reply to no request in flight (timed out, or of a connection since torn down) is ignored. */
  settle(frame: ReplyFrame, ref: number): void {
    const request = this.inFlight.get(ref);
    if (!request) return;
    this.inFlight.delete(ref);
    clearTimeout(request.timer);
    if (frame.op === "ok") request.resolve(frame);
    else request.reject(new RealtimeError(frame.code, frame.message, frame.retryAfterMs));
  }

  /** Resolves at the next `welcome` (see `welcomed`); rejects when the client closes first (see `failWaiting`). */
  afterWelcome(): Promise<void> {
    return new Promise<void>((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  welcomed(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const waiter of waiting) waiter.resolve();
  }

  /** The connection ended: every request in flight rejects with `error`. */
  failInFlight(error: RealtimeError): void {
    const inFlight = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const request of inFlight) {
      clearTimeout(request.timer);
      request.reject(error);
    }
  }

  /** The client closed: every request waiting for `welcome` rejects with `closed`. */
  failWaiting(): void {
    for (const waiter of this.waiting) waiter.reject(new RealtimeError("closed", "client closed"));
    this.waiting = [];
  }
}
