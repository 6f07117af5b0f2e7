import amqp, { type Channel, type ChannelModel, type ConfirmChannel } from "amqplib";
import type { Readable } from "node:stream";
import { type Clock, systemClock, type Timer } from "@sobranie/protocol/runtime/clock";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import { LateTick } from "@sobranie/protocol/runtime/late-tick";
import { SobranieError } from "@sobranie/protocol/errors";
import { describeBrokerUrl } from "./broker-addresses.js";
import { coalesceMuxWrites } from "./coalesce-writes.js";

/**
 * Heartbeat asked of the broker when the URL names none (RabbitMQ's lowest
 * recommended value). RabbitMQ sends a frame at least every heartbeat
 * interval when it has nothing else to send, which is what the silence
 * watchdog below relies on.
 */
const DEFAULT_HEARTBEAT_SECONDS = 5;
/**
 * Added to the heartbeat interval before silence counts as a hung or
 * unreachable node: RabbitMQ checks every half interval whether it sent
 * anything, so a healthy node can stay quiet for up to one interval; the
 * slack covers its scheduling and ours.
 */
const SILENCE_SLACK_MS = 2_000;
/** TCP connect + AMQP handshake budget; past it the attempt counts as failed and is retried with backoff. */
const CONNECT_TIMEOUT_MS = 5_000;
const MS_PER_SECOND = 1_000;
/** Budget for the close handshake of a session that was lost (its node may never answer). */
const LOST_CLOSE_TIMEOUT_MS = 1_000;

/** Runs a step on a channel of its own (see AmqpSession.attempt). */
export type ChannelAttempt = (step: (channel: Channel) => Promise<void>, timeoutMs: number) => Promise<{ ok: true } | { ok: false; error: unknown }>;

/** The connection (or one of its channels) failed; everything opened on it is unusable. */
export class BrokerConnectionLostError extends SobranieError {
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

  private watchdog: Timer | undefined;

  private constructor(
    private readonly model: ChannelModel,
    private readonly logger: Logger,
    /** Where this session is connected (`host:port/vhost`), for logs. */
    readonly address: string,
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

  /**
   * Connects to one node. Guarantee: a node that stops sending anything
   * (SIGSTOP, a frozen VM, a partition that drops packets) loses the session
   * within heartbeat + 2 s, not the two to three heartbeat intervals amqplib's
   * own check takes; a node that closes the socket loses it at once.
   */
  static async open(url: string, connectionName: string, logger: Logger, clock: Clock = systemClock): Promise<AmqpSession> {
    const withHeartbeat = withDefaultHeartbeat(url);
    const model = await amqp.connect(withHeartbeat, {
      clientProperties: { connection_name: connectionName },
      timeout: CONNECT_TIMEOUT_MS,
    });
    if (!coalesceMuxWrites(model)) logger.debug({}, "amqplib internals not as expected: frames are written one syscall each");
    const session = new AmqpSession(model, logger, describeBrokerUrl(url));
    const heartbeatSeconds = Number(new URL(withHeartbeat).searchParams.get("heartbeat"));
    if (heartbeatSeconds > 0) session.watchSilence(heartbeatSeconds * MS_PER_SECOND + SILENCE_SLACK_MS, clock);
    return session;
  }

  get isLost(): boolean {
    return this.lostWith !== undefined;
  }

  /** Gives the session up from outside (a probe found its node unresponsive): handled like a dropped connection. */
  abandon(error: Error): void {
    this.markLost(error);
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

  /**
   * Runs `step` on a channel of its own that the session does not watch: a
   * 404 or 406 there closes only that channel, not the session. For declares
   * the process can live without (a queue it does not consume from, whose
   * node may be down). Resolves with the failure instead of rejecting; a
   * step still running after `timeoutMs` counts as failed (its channel is
   * closed in the background).
   */
  async attempt(step: (channel: Channel) => Promise<void>, timeoutMs: number): Promise<{ ok: true } | { ok: false; error: unknown }> {
    let channel: Channel | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      channel = await this.guard(this.model.createChannel());
      channel.on("error", () => {});
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      });
      await this.guard(Promise.race([step(channel), timeout]));
      return { ok: true };
    } catch (error) {
      return { ok: false, error };
    } finally {
      clearTimeout(timer);
      channel?.close().catch(() => {});
    }
  }

  /** Closes the connection (and with it every channel). Never rejects; gives up after `timeoutMs`. */
  async close(timeoutMs: number): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.watchdog?.cancel();
    if (this.lostWith) return;
    await this.closeWithin(timeoutMs);
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

  /**
   * Marks the session lost when nothing at all arrived for `limitMs`. A
   * late check (our own event loop stalled, so unread bytes may be waiting)
   * judges nothing.
   */
  private watchSilence(limitMs: number, clock: Clock): void {
    const stream = this.stream();
    if (typeof stream?.on !== "function") {
      this.logger.debug({}, "amqplib internals not as expected: no silence watchdog, amqplib's heartbeat check only");
      return;
    }
    let heardAtMs = clock.monotonic();
    // amqplib reads on 'readable'; a second listener sees every arrival without changing the flow.
    stream.on("readable", () => (heardAtMs = clock.monotonic()));
    const checkEveryMs = Math.max(250, Math.floor(limitMs / 4));
    const timing = new LateTick(checkEveryMs, clock.monotonic());
    this.watchdog = clock.setInterval(() => {
      const nowMs = clock.monotonic();
      if (timing.late(nowMs) || nowMs - heardAtMs <= limitMs) return;
      this.markLost(new BrokerConnectionLostError(`nothing heard from the broker at ${this.address} for ${Math.round(nowMs - heardAtMs)} ms: node hung or unreachable`));
    }, checkEveryMs);
  }

  private markLost(error: Error): void {
    if (this.lostWith) return;
    this.lostWith = error;
    this.watchdog?.cancel();
    const listeners = this.lostListeners.splice(0);
    for (const listener of listeners) listener(error);
    // Channel errors leave the connection open: close it so nothing keeps using it.
    if (!this.closing) void this.closeWithin(LOST_CLOSE_TIMEOUT_MS);
  }

  /**
   * The AMQP close handshake, then the socket destroyed if the broker has not
   * answered within `timeoutMs`: a hung node never answers, and its socket
   * (and the exclusive queue tied to it) must not outlive the session here.
   */
  private async closeWithin(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    const closed = this.model.close().then(
      () => true,
      () => true,
    );
    const answered = await Promise.race([closed, timeout.then(() => false)]);
    clearTimeout(timer);
    if (!answered) this.stream()?.destroy?.();
  }

  private stream(): Partial<Readable> | undefined {
    return (this.model as unknown as { connection?: { stream?: Partial<Readable> } }).connection?.stream;
  }
}

/** `url` with `heartbeat=` DEFAULT_HEARTBEAT_SECONDS added unless it names one. */
export function withDefaultHeartbeat(url: string): string {
  const parsed = new URL(url);
  if (!parsed.searchParams.has("heartbeat")) parsed.searchParams.set("heartbeat", String(DEFAULT_HEARTBEAT_SECONDS));
  return parsed.toString();
}
