import { type BackoffOptions, retryWithBackoff } from "../../core/backoff.js";
import { BrokerUnavailableError } from "../../core/ports/broker.js";
import type { Clock } from "../../core/ports/clock.js";
import type { Logger } from "../../core/ports/logger.js";

/** What every AMQP adapter (broker, persist queue, presence bus, outbox publisher) is given to connect. */
export interface AmqpConnectionOptions {
  /** `amqp://user:pass@host:5672/vhost`; a `heartbeat` query parameter overrides the default. */
  readonly url: string;
  /** Names the connection in the RabbitMQ management UI. */
  readonly nodeId: string;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Backoff between connection attempts; default DEFAULT_RECONNECT. */
  readonly reconnect?: BackoffOptions;
}

/** Backoff of every AMQP connection loop (broker, persist queue, presence bus, outbox publisher) unless configured. */
export const DEFAULT_RECONNECT: BackoffOptions = { initialDelayMs: 100, maxDelayMs: 5_000 };

/**
 * The connection loop shared by the AMQP adapters: `establish` until it
 * succeeds, with full-jitter backoff (and one jittered wait first on a
 * reconnect, see retryWithBackoff), each failure logged as `<what>
 * connection attempt failed`. Rejects BrokerUnavailableError when `signal`
 * aborted first (the adapter was stopped).
 */
export async function connectUntilReady(options: {
  readonly what: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly backoff: BackoffOptions | undefined;
  readonly isReconnect: boolean;
  readonly establish: () => Promise<void>;
}): Promise<void> {
  const connected = await retryWithBackoff({
    clock: options.clock,
    backoff: options.backoff ?? DEFAULT_RECONNECT,
    signal: options.signal,
    waitFirst: options.isReconnect,
    attempt: options.establish,
    onFailure: (error, attempt) => options.logger.warn({ err: error, attempt }, `${options.what} connection attempt failed; retrying`),
  });
  if (!connected) throw new BrokerUnavailableError(`${options.what} stopped before it connected`);
}
