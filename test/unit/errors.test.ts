import { describe, expect, it } from "vitest";
import { PublishConfirmTimeoutError, PublishNackedError, PublishUnroutableError } from "@sobranie/publisher/amqp/confirm-publisher";
import { BrokerConnectionLostError } from "@sobranie/publisher/amqp/session";
import { DeadQueueUpgradeError } from "../../src/adapters/amqp/upgrade-dead-queue.js";
import { PersistQueueFullError } from "../../src/adapters/memory/memory-persist-backlog.js";
import { ConfigError } from "../../src/config/error.js";
import { NamespaceNotFoundError } from "../../src/core/broker-publishes.js";
import { PersistOutcomeMismatchError } from "../../src/core/persist-outcomes.js";
import { AuthenticationError } from "../../src/core/ports/authenticator.js";
import { StoreUnavailableError } from "../../src/core/ports/event-store.js";
import { EventTooLargeError } from "../../src/core/published-envelope.js";
import { BrokerUnavailableError, isRetryable, SobranieError } from "@sobranie/protocol/errors";
import * as publisherSdk from "@sobranie/publisher";
import { PublishAbandonedError, PublisherBufferFullError, PublisherClosedError, PublishValidationError } from "@sobranie/publisher";

// Every error class of the server and the publisher SDK, with the name, code
// and retryable value callers (the broker consumer, HTTP routes, backends)
// decide by.
const ERRORS: readonly (readonly [Error, string, string, boolean])[] = [
  [new ConfigError([{ variable: "PORT", message: "not a number" }]), "ConfigError", "bad_config", false],
  [new PublishValidationError("invalid_channel", "bad channel"), "PublishValidationError", "invalid_channel", false],
  [new PublisherBufferFullError(3), "PublisherBufferFullError", "buffer_full", true],
  [new PublisherClosedError(), "PublisherClosedError", "publisher_closed", false],
  [new PublishAbandonedError("e-1", false), "PublishAbandonedError", "publish_abandoned", true],
  [new PublishNackedError(), "PublishNackedError", "publish_nacked", true],
  [new PublishConfirmTimeoutError(1_000), "PublishConfirmTimeoutError", "confirm_timeout", true],
  [new PublishUnroutableError("sobranie.events", "chat.1.message"), "PublishUnroutableError", "unroutable", true],
  [new EventTooLargeError(70_000), "EventTooLargeError", "too_large", false],
  [new NamespaceNotFoundError("chat"), "NamespaceNotFoundError", "not_found", false],
  [new BrokerUnavailableError(), "BrokerUnavailableError", "unavailable", true],
  [new StoreUnavailableError(), "StoreUnavailableError", "unavailable", true],
  [new AuthenticationError("expired"), "AuthenticationError", "unauthorized", false],
  [new PersistOutcomeMismatchError(2, 1), "PersistOutcomeMismatchError", "outcome_mismatch", false],
  [new BrokerConnectionLostError("socket closed"), "BrokerConnectionLostError", "connection_lost", true],
  [new PersistQueueFullError(10), "PersistQueueFullError", "persist_queue_full", true],
  [new DeadQueueUpgradeError("consumers attached"), "DeadQueueUpgradeError", "upgrade_failed", false],
];

describe("SobranieError", () => {
  it.each(ERRORS.map(([error, name, code, retryable]) => ({ error, name, code, retryable })))(
    "$name is a SobranieError with code $code, retryable $retryable",
    ({ error, name, code, retryable }) => {
      expect(error).toBeInstanceOf(SobranieError);
      expect(error).toBeInstanceOf(Error);
      expect({ name: error.name, code: (error as SobranieError).code, retryable: (error as SobranieError).retryable }).toEqual({ name, code, retryable });
      expect(isRetryable(error)).toBe(retryable);
    },
  );

  it("is exported by the publisher SDK with isRetryable", () => {
    expect(new publisherSdk.PublisherBufferFullError(1)).toBeInstanceOf(publisherSdk.SobranieError);
    expect(publisherSdk.isRetryable).toBe(isRetryable);
  });
});

describe("isRetryable", () => {
  it("follows the retryable field of errors that are not ours, as from another copy of the SDK or a library", () => {
    expect(isRetryable(Object.assign(new Error("channel closed"), { retryable: true }))).toBe(true);
    expect(isRetryable({ retryable: true })).toBe(true);
  });

  it("is false for anything without retryable exactly true", () => {
    for (const value of [new Error("boom"), { retryable: "yes" }, { retryable: 1 }, null, undefined, "unavailable", 0]) {
      expect(isRetryable(value)).toBe(false);
    }
  });
});
