import { type Clock, systemClock } from "@sobranie/protocol/runtime/clock";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import { BrokerAddresses } from "@sobranie/publisher/amqp/broker-addresses";
import { type AmqpConnectionOptions, connectUntilReady } from "@sobranie/publisher/amqp/reconnect";
import { AmqpSession } from "@sobranie/publisher/amqp/session";

export interface SessionLoopOptions<T> extends AmqpConnectionOptions {
  /** Names the connection in logs (`<what> connected`, `<what> connection lost; reconnecting`). */
  readonly what: string;
  /** `connection_name` in the management UI. */
  readonly connectionName: string;
  /** Opens what the owner needs on a new session; guarded against its loss, so it never hangs on a dead connection. */
  readonly setup: (session: AmqpSession) => Promise<T>;
  /** The session is up with `value`: the owner may use it until `down`. */
  readonly up: (value: T, session: AmqpSession) => void;
  /** The session is gone (lost or stopped); a new one is being made unless stopped. */
  readonly down: (error: Error) => void;
}

/** Budget for closing a half-set-up connection before retrying. */
const ABANDON_CLOSE_TIMEOUT_MS = 1_000;

/**
 * One connection that stays up: connects to the next broker address with
 * backoff, runs `setup`, reports `up`, and on the first loss reports `down`
 * and starts over. For adapters whose whole state is "a channel or two on a
 * live connection" (the presence bus's two sides, the publish connections).
 */
export class SessionLoop<T> {
  private readonly abort = new AbortController();
  private readonly addresses: BrokerAddresses;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private session: AmqpSession | undefined;
  private opening: AmqpSession | undefined;
  private started: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: SessionLoopOptions<T>) {
    this.addresses = new BrokerAddresses(options.urls);
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
  }

  /** Resolves once up the first time; rejects (BrokerUnavailableError) if stopped first. */
  start(): Promise<void> {
    this.started ??= this.connect(false);
    return this.started;
  }

  /** The session up now, if any. */
  get current(): AmqpSession | undefined {
    return this.session;
  }

  /** Closes the connection (bounded) and stops reconnecting. Idempotent. */
  stop(timeoutMs: number): Promise<void> {
    this.stopping ??= (async () => {
      this.abort.abort();
      const session = this.session;
      this.session = undefined;
      await Promise.all([session?.close(timeoutMs), this.opening?.close(timeoutMs)]);
    })();
    return this.stopping;
  }

  private connect(isReconnect: boolean): Promise<void> {
    const { clock, logger, abort, options, addresses } = this;
    return connectUntilReady({ what: options.what, addresses, clock, logger, signal: abort.signal, backoff: options.reconnect, isReconnect, establish: (url) => this.establish(url) });
  }

  private async establish(url: string): Promise<void> {
    const session = await AmqpSession.open(url, this.options.connectionName, this.logger, this.clock);
    this.opening = session;
    let value: T;
    try {
      value = await session.guard(this.options.setup(session));
      if (session.isLost || this.abort.signal.aborted) throw new Error(`${this.options.what} connection lost during setup`);
    } catch (error) {
      this.opening = undefined;
      await session.close(ABANDON_CLOSE_TIMEOUT_MS);
      throw error;
    }
    this.opening = undefined;
    this.session = session;
    session.onLost((error) => this.lost(session, error));
    this.logger.info({ broker: session.address }, `${this.options.what} connected`);
    this.options.up(value, session);
  }

  private lost(session: AmqpSession, error: Error): void {
    if (session !== this.session) return;
    this.session = undefined;
    this.options.down(error);
    if (this.abort.signal.aborted) return;
    this.logger.warn({ err: error, broker: session.address }, `${this.options.what} connection lost; reconnecting`);
    this.connect(true).catch((reason: unknown) => this.logger.debug({ err: reason }, `${this.options.what}: reconnect loop ended`));
  }
}
