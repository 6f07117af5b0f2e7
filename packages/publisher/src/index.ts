/**
 * The backend publisher SDK (`@sobranie/publisher`): validated
 * events to `sobranie.events` with publisher confirms, reconnects and a
 * bounded buffer. Runs on Node and on Bun (amqplib over node:net).
 */
export { createPublisher } from "./publisher.js";
export type { CloseOptions, EventMap, Notification, Publisher, PublishResult } from "./publisher.js";
export type { PublishOptions } from "./event.js";
export type { DisconnectOptions } from "./control.js";
export type { PublisherOptions } from "./options.js";
export type { Logger } from "@sobranie/protocol/runtime/logger";
export {
  PublishAbandonedError,
  PublisherBufferFullError,
  PublisherClosedError,
  PublishValidationCode,
  PublishValidationError,
} from "./errors.js";
export { PublishConfirmTimeoutError, PublishNackedError, PublishUnroutableError } from "./amqp/confirm-publisher.js";
export { MAX_ENVELOPE_BYTES } from "@sobranie/protocol/envelope";
export { isRetryable, SobranieError } from "@sobranie/protocol/errors";
export { MAX_DATA_DEPTH } from "@sobranie/protocol/event-data";
