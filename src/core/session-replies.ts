import { ErrorCode } from "@sobranie/protocol/codes";
import { parseChannel, type Channel } from "@sobranie/protocol/channel";
import { isRetryable } from "@sobranie/protocol/errors";
import type { ServerFrame } from "@sobranie/protocol/frames";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Metrics } from "./ports/metrics.js";
import { EventTooLargeError } from "./published-envelope.js";

/**
 * How one session answers a client frame: `ok` or `error`, carrying the
 * frame's `ref` when it had one. Every refusal is counted by its code; a
 * failure that is neither the client's (an event too large) nor a broker
 * outage is a bug, logged and answered `internal`.
 */
export class SessionReplies {
  constructor(
    private readonly deps: {
      readonly sessionId: string;
      readonly metrics: Metrics;
      readonly logger: Logger;
      /** The session's send: nothing once it is closed. */
      send(frame: ServerFrame): void;
    },
  ) {}

  ok(ref: number | undefined, fields: Record<string, unknown>): void {
    this.deps.send(ref === undefined ? { op: "ok", ...fields } : { op: "ok", ref, ...fields });
  }

  /** An `error` frame, counted as a refusal by its code. */
  reject(ref: number | undefined, code: ErrorCode, message: string, retryAfterMs?: number): void {
    this.deps.metrics.frameRejected(code);
    const frame: ServerFrame = { op: "error", code, message };
    if (ref !== undefined) frame.ref = ref;
    if (retryAfterMs !== undefined) frame.retryAfterMs = retryAfterMs;
    this.deps.send(frame);
  }

  /** The channel named by `text`; undefined after a `bad_request` refusal when it names none. */
  channelOf(ref: number | undefined, text: string): Channel | undefined {
    const channel = parseChannel(text);
    if (!channel) {
      this.reject(ref, ErrorCode.BadRequest, `"${text.slice(0, 64)}" is not a channel: namespace:id with [a-z0-9_-] and [A-Za-z0-9_-]`);
    }
    return channel;
  }

  rejectAuthorization(ref: number | undefined, channel: Channel, reason: "not_found" | "forbidden"): void {
    if (reason === "not_found") {
      this.reject(ref, ErrorCode.NotFound, `namespace ${channel.namespace} does not exist`);
    } else {
      this.reject(ref, ErrorCode.Forbidden, `not allowed on ${channel.name}`);
    }
  }

  /** A request that failed after it was admitted: the event's size, a retryable outage, or a bug. */
  rejectFailure(ref: number | undefined, error: unknown): void {
    if (error instanceof EventTooLargeError) return this.reject(ref, ErrorCode.TooLarge, error.message);
    if (isRetryable(error)) {
      this.reject(ref, ErrorCode.Unavailable, "message broker unavailable, retry shortly");
    } else {
      this.deps.logger.error({ err: error, session: this.deps.sessionId }, "request failed");
      this.reject(ref, ErrorCode.Internal, "internal error");
    }
  }
}
