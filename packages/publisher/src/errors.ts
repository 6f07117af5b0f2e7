import { SobranieError } from "@sobranie/protocol/errors";

/**
 * Every failure the publisher SDK reports, one class each. All are
 * SobranieErrors carrying `code` and `retryable`; a backend decides to retry,
 * alert or drop from those alone (`isRetryable`).
 */

/** Why an event was refused before it reached the network. */
export const PublishValidationCode = {
  InvalidChannel: "invalid_channel",
  ReservedNamespace: "reserved_namespace",
  InvalidType: "invalid_type",
  InvalidId: "invalid_id",
  InvalidOccurredAt: "invalid_occurred_at",
  MissingData: "missing_data",
  NotSerializable: "not_serializable",
  TooLarge: "too_large",
  /** `data` nests arrays/objects deeper than MAX_DATA_DEPTH (the gateway would dead-letter it as `too_deep`). */
  TooDeep: "too_deep",
  /** A control command (disconnectUser, unsubscribeUser, revokeToken, revokeTokensIssuedBefore) with a bad field. */
  InvalidControl: "invalid_control",
} as const;
export type PublishValidationCode = (typeof PublishValidationCode)[keyof typeof PublishValidationCode];

/** The event breaks docs/protocol.md §3 (channel grammar, type pattern, id, size, data depth). Nothing was sent; retrying the same event fails again. */
export class PublishValidationError extends SobranieError {
  override readonly name = "PublishValidationError";
  readonly retryable = false;
  constructor(
    readonly code: PublishValidationCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * `maxBuffered` events are already accepted and not yet confirmed (the broker
 * is away or slower than the caller). This event was NOT accepted: the caller
 * must retry later, fail its own request, or spill elsewhere.
 */
export class PublisherBufferFullError extends SobranieError {
  override readonly name = "PublisherBufferFullError";
  readonly code = "buffer_full";
  readonly retryable = true;
  constructor(readonly maxBuffered: number) {
    super(`publisher buffer full: ${maxBuffered} events are waiting for the broker; this event was not accepted`);
  }
}

/** `publish` was called after `close()`: this publisher accepts nothing any more. */
export class PublisherClosedError extends SobranieError {
  override readonly name = "PublisherClosedError";
  readonly code = "publisher_closed";
  readonly retryable = false;
  constructor(message = "publisher is closed") {
    super(message);
  }
}

/**
 * `close()` gave up on an accepted event before the broker confirmed it.
 * `maybeSent` is true when it had been written to a connection, so the broker
 * may still have it: re-publishing with the same `id` is safe, because
 * consumers drop duplicates by id.
 */
export class PublishAbandonedError extends SobranieError {
  override readonly name = "PublishAbandonedError";
  readonly code = "publish_abandoned";
  readonly retryable = true;
  constructor(
    readonly eventId: string,
    readonly maybeSent: boolean,
    options?: { cause?: unknown },
  ) {
    super(
      `publisher closed before the broker confirmed event ${eventId}` +
        (maybeSent ? " (it was sent and may still be delivered; re-publish with the same id)" : " (it was never sent)"),
      options,
    );
  }
}
