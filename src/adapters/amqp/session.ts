import amqp, { type Channel, type ChannelModel, type ConfirmChannel } from "amqplib";
import type { Logger } from "../../core/ports/logger.js";
import { coalesceMuxWrites } from "./coalesce-writes.js";

/**
 * Heartbeat asked of the broker when the URL names none: a peer that
 * vanished without a FIN (VM gone, network partition) is noticed within about
 * two intervals instead of the broker's default of minutes.
 */
const DEFAULT_HEARTBEAT_SECONDS = 10;
/** TCP connect + AMQP handshake budget; past it the attempt counts as failed and is retried with backoff. */
const CONNECT_TIMEOUT_MS = 5_000;

/** The connection (or one of its channels) failed; everything opened on it is unusable. */
export class BrokerConnectionLostError extends Error {
  override readonly name = "BrokerConnectionLostError";
  readonly code = "connection_lost";
  readonly retryable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * One AMQP connection and the channels opened on it, treated as a unit:
 * the first unexpected close or error of the connection or of ANY channel
 * marks the whole session lost (once), and the owner replaces it with a new
 * one. A channel error (404 on a declare, 406 on a conflicting argument, a
 * consumer cancelled because its queue was deleted) therefore takes the same
 * well-tested path as a dropped connection: redeclare everything, re-consume,
 * re-bind. That costs one reconnect but leaves no half-working state behind.
 */
export class AmqpSession {
  private lostWith: Error | undefined;
  private closing = false;
  private readonly lostListeners: Array<(error: Error) => void> = [];
  /** Settles (never rejects) when the session is lost; used to abandon setup steps. */
  readonly lost: Promise<Error>;

  private constructor(
    private readonly model: ChannelModel,
    private readonly logger: Logger,
  ) {
    this.lost = new Promise((resolve) => this.lostListeners.push(resolve));
    model.on("error", (error: Error) => this.markLost(new BrokerConnectionLostError("connection error", { cause: error })));
    model.on("close", (error?: Error) => this.markLost(new BrokerConnectionLostError("connection closed", { cause: error })));
    model.on("handler-error", (error: Error, event: string) => {
      this.logger.error({ err: error, event }, "amqp connection listener threw");
    });
    model.on("blocked", (reason: string) => this.logger.warn({ reason }, "broker blocked this connection (resource alarm)"));
    model.on("unblocked", () => this.logger.info({}, "broker unblocked this connection"));
  }

  static async open(url: string, connectionName: string, logger: Logger): Promise<AmqpSession> {
    const model = await amqp.connect(withDefaultHeartbeat(url), {
      clientProperties: { connection_name: connectionName },
      timeout: CONNECT_TIMEOUT_MS,
    });
    if (!coalesceMuxWrites(model)) logger.debug({}, "amqplib internals not as expected: frames are written one syscall each");
    return new AmqpSession(model, logger);
  }

  get isLost(): boolean {
    return this.lostWith !== undefined;
  }

  /** Registers a callback for the loss (also fired by `close`); called at once if already lost. */
  onLost(listener: (error: Error) => void): void {
    if (this.lostWith) listener(this.lostWith);
    else this.lostListeners.push(listener);
  }

  /** Races a setup step against the loss of the session, so setup never hangs on a dead connection. */
  async guard<T>(step: Promise<T>): Promise<T> {
    step.catch(() => {});
    const lost = this.lost.then((error) => Promise.reject(error));
    lost.catch(() => {});
    return Promise.race([step, lost]);
  }

  async createChannel(): Promise<Channel> {
    const channel = await this.guard(this.model.createChannel());
    this.watch(channel);
    return channel;
  }

  async createConfirmChannel(): Promise<ConfirmChannel> {
    const channel = await this.guard(this.model.createConfirmChannel());
    this.watch(channel);
    return channel;
  }

  /** Closes the connection (and with it every channel). Never rejects; gives up after `timeoutMs`. */
  async close(timeoutMs: number): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.lostWith) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([this.model.close().catch(() => {}), timeout]);
    clearTimeout(timer);
  }

  private watch(channel: Channel): void {
    channel.on("error", (error: Error) => this.markLost(new BrokerConnectionLostError("channel error", { cause: error })));
    // Deferred a microtask: when the whole connection drops, amqplib closes
    // the channels first; this lets the connection's close (with its reason)
    // be the one reported.
    channel.on("close", () => queueMicrotask(() => this.markLost(new BrokerConnectionLostError("channel closed"))));
    channel.on("handler-error", (error: Error, event: string) => {
      this.logger.error({ err: error, event }, "amqp channel listener threw");
    });
  }

  private markLost(error: Error): void {
    if (this.lostWith) return;
    this.lostWith = error;
    const listeners = this.lostListeners.splice(0);
    for (const listener of listeners) listener(error);
    // Channel errors leave the connection open: close it so nothing keeps using it.
    if (!this.closing) this.model.close().catch(() => {});
  }
}

function withDefaultHeartbeat(url: string): string {
  const parsed = new URL(url);
  if (!parsed.searchParams.has("heartbeat")) parsed.searchParams.set("heartbeat", String(DEFAULT_HEARTBEAT_SECONDS));
  return parsed.toString();
}
