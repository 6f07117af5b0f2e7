import { type BackoffOptions, retryWithBackoff } from "@sobranie/protocol/runtime/backoff";
import { BrokerUnavailableError } from "@sobranie/protocol/errors";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import { type BrokerAddresses, describeBrokerUrl } from "./broker-addresses.js";

/** What every AMQP adapter (broker, persist queue, presence bus, outbox publisher) is given to connect. */
export interface AmqpConnectionOptions {
  /**
   * The cluster's nodes, `amqp://user:pass@host:5672/vhost` each (or one URL
   * of a load balancer in front of them), tried in rotation; a `heartbeat`
   * query parameter overrides the default.
   */
  readonly urls: readonly string[];
  /** Names the connection in the RabbitMQ management UI. */
  readonly nodeId: string;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Backoff between connection attempts; default DEFAULT_RECONNECT. */
  readonly reconnect?: BackoffOptions;
  /** Publisher confirms not received within this fail (default DEFAULT_CONFIRM_TIMEOUT_MS). */
  readonly confirmTimeoutMs?: number;
}

/** Backoff of every AMQP connection loop (broker, persist queue, presence bus, outbox publisher) unless configured. */
export const DEFAULT_RECONNECT: BackoffOptions = { initialDelayMs: 100, maxDelayMs: 5_000 };

/**
 * How long a publish may wait for the broker's confirm. A healthy node
 * confirms in milliseconds (a quorum queue's fsync included); one that has
 * not confirmed in 5 s is hung, partitioned or behind a hung queue, and the
 * caller is better served by an error it can retry than by waiting on it.
 */
export const DEFAULT_CONFIRM_TIMEOUT_MS = 5_000;

/**
 * The connection loop shared by the AMQP adapters: `establish` on the next
 * address until it succeeds, with full-jitter backoff (and one jittered wait
 * first on a reconnect, see retryWithBackoff), each failure logged as
 * `<what> connection attempt failed` with the address tried. Rejects
 * BrokerUnavailableError when `signal` aborted first (the adapter was stopped).
 */
export async function connectUntilReady(options: {
  readonly what: string;
  readonly addresses: BrokerAddresses;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly backoff: BackoffOptions | undefined;
  readonly isReconnect: boolean;
  readonly establish: (url: string) => Promise<void>;
}): Promise<void> {
  let url = "";
  const connected = await retryWithBackoff({
    clock: options.clock,
    backoff: options.backoff ?? DEFAULT_RECONNECT,
    signal: options.signal,
    waitFirst: options.isReconnect,
    attempt: () => options.establish((url = options.addresses.next())),
    onFailure: (error, attempt) =>
      options.logger.warn({ err: error, attempt, broker: describeBrokerUrl(url) }, `${options.what} connection attempt failed; retrying`),
  });
  if (!connected) throw new BrokerUnavailableError(`${options.what} stopped before it connected`);
}
