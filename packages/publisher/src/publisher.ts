import type { ConfirmChannel } from "amqplib";
import { uuidv7 } from "uuidv7";
import { BrokerAddresses } from "./amqp/broker-addresses.js";
import { ConfirmPublisher, PublishConfirmTimeoutError } from "./amqp/confirm-publisher.js";
import { AmqpSession } from "./amqp/session.js";
import { AmqpNames, eventProperties } from "@sobranie/protocol/amqp";
import { fullJitterDelayMs, sleep } from "@sobranie/protocol/runtime/backoff";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import { BrokerUnavailableError } from "@sobranie/protocol/errors";
import { PublishAbandonedError, PublisherBufferFullError, PublisherClosedError } from "./errors.js";
import { buildEvent, type OutgoingEvent, type PublishOptions } from "./event.js";
import { parseOptions, type ParsedPublisherOptions, type PublisherOptions } from "./options.js";
import { buildControl, epochMs, type DisconnectOptions } from "./control.js";

/** Event type → data type. The default accepts any type with any data. */
export type EventMap = Record<string, unknown>;

export interface PublishResult {
  /** The event id: the caller's, or the generated UUIDv7. */
  readonly id: string;
}

export interface Notification<TData = unknown> {
  /** Default `notification.created`. */
  readonly type?: string;
  readonly data: TData;
  readonly id?: string;
  readonly occurredAt?: Date | string;
}

export interface CloseOptions {
  /** How long to keep trying to get accepted events confirmed before rejecting them. Default 5 000 ms. */
  readonly timeoutMs?: number;
}

export interface Publisher<Events extends EventMap = EventMap> {
  /**
   * Publishes `{id, type, data, occurredAt}` to `sobranie.events` with routing
   * key `namespace.id.type`. Resolves after the broker's publisher confirm.
   * Rejects with `PublishValidationError` before any I/O for an event that
   * breaks docs/protocol.md §3, with `PublisherBufferFullError` at once when
   * `maxBuffered` events are pending, with `PublishNackedError` when the
   * broker refuses it, with `PublishConfirmTimeoutError` when a broker node
   * that still answers did not confirm it within `confirmTimeoutMs` (safe to
   * re-publish with the same id), and with `PublishAbandonedError` when
   * `close()` gives up.
   */
  publish<TType extends keyof Events & string>(
    channel: string,
    type: TType,
    data: Events[TType],
    options?: PublishOptions,
  ): Promise<PublishResult>;
  /** Publishes to channel `user:<userId>`, type `notification.created` unless given. */
  notifyUser(userId: string | number, notification: Notification): Promise<PublishResult>;
  // Control commands (docs/protocol.md §11), to `sobranie.control`, which
  // every gateway node consumes: same confirms, order and errors as `publish`,
  // `PublishValidationError` code `invalid_control` for a bad argument, and
  // `PublishUnroutableError` when no gateway is connected to take the command
  // (it was applied nowhere). `userId` is the tokens' `sub`.

  /** Closes every connection of the user on every node: 4003 (`final`, default) or 4001 (`reauthenticate`). */
  disconnectUser(userId: string, options?: DisconnectOptions): Promise<PublishResult>;
  /** Ends the user's subscription to `channel` everywhere (`unsubscribed`, reason `revoked`); their current tokens may not subscribe to it again. */
  unsubscribeUser(userId: string, channel: string): Promise<PublishResult>;
  /** Revokes one token by its `jti`: its sessions close with 4001, and it is refused from then on (until `expiresAt`, the token's exp, when given). */
  revokeToken(userId: string, tokenId: string, options?: { expiresAt?: Date | number }): Promise<PublishResult>;
  /** Revokes every token of the user issued before `issuedBefore` (by `iat`; tokens without `iat` too). */
  revokeTokensIssuedBefore(userId: string, issuedBefore: Date | number): Promise<PublishResult>;
  /**
   * Stops accepting events, waits up to `timeoutMs` for the pending ones to
   * be confirmed (reconnecting meanwhile if needed), rejects the rest with
   * `PublishAbandonedError`, then closes the connection. Idempotent.
   */
  close(options?: CloseOptions): Promise<void>;
  /** True while a confirm channel to the broker is open. */
  readonly connected: boolean;
  /** Events accepted and not yet settled (buffered plus in flight). */
  readonly pending: number;
}

/** Creates a publisher and starts connecting in the background; `publish` may be called at once (events buffer). */
export function createPublisher<Events extends EventMap = EventMap>(options: PublisherOptions): Publisher<Events> {
  return new AmqpPublisher<Events>(parseOptions(options));
}

const NOTIFICATION_TYPE = "notification.created";
const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;
/** Budget for the AMQP connection.close handshake once nothing is pending. */
const CONNECTION_CLOSE_TIMEOUT_MS = 2_000;
/**
 * Writes handed to the channel before waiting for confirms. Keeps the
 * ConfirmPublisher's drain queue short and bounds what a lost connection
 * sends twice.
 */
const MAX_IN_FLIGHT = 1_000;

/**
 * Timers that keep the process alive: while events are pending and the broker
 * is away, the reconnect timer is the only thing left on the event loop, and
 * an unref'd timer would let the process exit with events silently unsent.
 */
const liveClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout(callback, ms) {
    const handle = setTimeout(callback, ms);
    return { cancel: () => clearTimeout(handle) };
  },
  setInterval(callback, ms) {
    const handle = setInterval(callback, ms);
    return { cancel: () => clearInterval(handle) };
  },
};

interface Entry {
  readonly seq: number;
  readonly event: OutgoingEvent;
  readonly resolve: (result: PublishResult) => void;
  readonly reject: (error: Error) => void;
  /** Written to some connection at least once, so the broker may have it. */
  maybeSent: boolean;
}

/** One connection's confirm channel and the writes still awaiting its confirms. */
interface Link {
  readonly session: AmqpSession;
  readonly confirms: ConfirmPublisher;
  inFlight: number;
  lost: boolean;
}

/**
 * Guarantees:
 * - Order: events are written in `publish` call order; after a reconnect the
 *   unconfirmed ones are written again first, before anything newer, and
 *   nothing is written on the new connection until every write of the old
 *   one has settled.
 * - No silent loss: every accepted event settles exactly once, resolved on
 *   its confirm or rejected with an error that says what happened. An event
 *   whose connection dropped (or whose node stopped answering) before the
 *   confirm is re-sent on the next node (at-least-once; consumers drop the
 *   duplicate by id).
 * - Bounded waits: no confirm is waited for longer than `confirmTimeoutMs`.
 * - Bounded memory: at most `maxBuffered` events are held.
 */
class AmqpPublisher<Events extends EventMap> implements Publisher<Events> {
  private readonly options: ParsedPublisherOptions;
  /** Not yet written, in seq order. */
  private waiting: Entry[] = [];
  /** Written on a lost link and not confirmed: written again first once the old link has settled. */
  private requeued: Entry[] = [];
  private accepted = 0;
  private nextSeq = 0;
  private link: Link | undefined;
  private readonly retiring = new Set<Link>();
  private closed = false;
  private abandoning = false;
  private closing: Promise<void> | undefined;
  private idleWaiters: Array<() => void> = [];
  private readonly stop = new AbortController();
  private readonly addresses: BrokerAddresses;
  private readonly running: Promise<void>;

  constructor(options: ParsedPublisherOptions) {
    this.options = options;
    this.addresses = new BrokerAddresses(options.urls);
    this.running = this.run();
  }

  get connected(): boolean {
    return this.link !== undefined;
  }

  get pending(): number {
    return this.accepted;
  }

  publish<TType extends keyof Events & string>(
    channel: string,
    type: TType,
    data: Events[TType],
    options: PublishOptions = {},
  ): Promise<PublishResult> {
    if (this.closed) return Promise.reject(new PublisherClosedError());
    let event: OutgoingEvent;
    try {
      event = buildEvent(channel, type, data, options, liveClock.now(), uuidv7);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.accept(event);
  }

  private accept(event: OutgoingEvent): Promise<PublishResult> {
    if (this.closed) return Promise.reject(new PublisherClosedError());
    if (this.accepted >= this.options.maxBuffered) return Promise.reject(new PublisherBufferFullError(this.options.maxBuffered));
    this.accepted += 1;
    return new Promise<PublishResult>((resolve, reject) => {
      this.waiting.push({ seq: this.nextSeq++, event, resolve, reject, maybeSent: false });
      this.pump();
    });
  }

  disconnectUser(userId: string, options: DisconnectOptions = {}): Promise<PublishResult> {
    const command: Record<string, unknown> = { command: "disconnect", user: userId, mode: options.mode ?? "final" };
    if (options.reason !== undefined) command.reason = options.reason;
    return this.publishControl(command);
  }

  unsubscribeUser(userId: string, channel: string): Promise<PublishResult> {
    return this.publishControl({ command: "unsubscribe", user: userId, channel });
  }

  revokeToken(userId: string, tokenId: string, options: { expiresAt?: Date | number } = {}): Promise<PublishResult> {
    const command: Record<string, unknown> = { command: "revoke", user: userId, tokenId };
    if (options.expiresAt !== undefined) command.expiresAt = epochMs(options.expiresAt);
    return this.publishControl(command);
  }

  revokeTokensIssuedBefore(userId: string, issuedBefore: Date | number): Promise<PublishResult> {
    return this.publishControl({ command: "revoke", user: userId, issuedBefore: epochMs(issuedBefore) });
  }

  private publishControl(command: Record<string, unknown>): Promise<PublishResult> {
    let event: OutgoingEvent;
    try {
      event = buildControl(command, liveClock.now(), uuidv7);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.accept(event);
  }

  notifyUser(userId: string | number, notification: Notification): Promise<PublishResult> {
    const { type = NOTIFICATION_TYPE, data, id, occurredAt } = notification;
    const options: { id?: string; occurredAt?: Date | string } = {};
    if (id !== undefined) options.id = id;
    if (occurredAt !== undefined) options.occurredAt = occurredAt;
    return (this as AmqpPublisher<EventMap>).publish(`user:${userId}`, type, data, options);
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= this.shutdown(options.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
    return this.closing;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.closed = true;
    await this.whenIdle(timeoutMs);
    this.abandoning = true;
    this.stop.abort();
    const unsent = [...this.requeued, ...this.waiting];
    this.requeued = [];
    this.waiting = [];
    for (const entry of unsent) this.fail(entry, new PublishAbandonedError(entry.event.id, entry.maybeSent));
    // In-flight writes settle when the run loop closes the connection: their
    // failures arrive while `abandoning` is set and are rejected, not re-queued.
    await this.running;
  }

  private async run(): Promise<void> {
    const { logger, connectionName, reconnect } = this.options;
    const signal = this.stop.signal;
    const aborted = new Promise<undefined>((resolve) => signal.addEventListener("abort", () => resolve(undefined), { once: true }));
    let attempt = 0;
    while (!signal.aborted) {
      let session: AmqpSession | undefined;
      const url = this.addresses.next();
      try {
        session = await AmqpSession.open(url, connectionName, logger, liveClock);
        const channel = await session.createConfirmChannel();
        // Same arguments as the gateway's topology, so this is a no-op once it exists;
        // without it a publish to a missing exchange would close the channel on every attempt.
        await session.guard(channel.assertExchange(AmqpNames.eventsExchange, "topic", { durable: true, autoDelete: false }));
        await session.guard(channel.assertExchange(AmqpNames.controlExchange, "fanout", { durable: true, autoDelete: false }));
        attempt = 0;
        const lost = this.attach(session, channel);
        const error = await Promise.race([lost, aborted]);
        if (error !== undefined) logger.warn({ err: error, pending: this.accepted }, "publisher lost the broker; reconnecting");
      } catch (error) {
        logger.warn({ err: error, attempt, pending: this.accepted }, "publisher could not connect to the broker");
        if (session !== undefined) void session.close(CONNECTION_CLOSE_TIMEOUT_MS);
      }
      if (signal.aborted) {
        await session?.close(CONNECTION_CLOSE_TIMEOUT_MS);
        return;
      }
      await sleep(liveClock, fullJitterDelayMs(reconnect, attempt), signal);
      attempt += 1;
    }
  }

  private attach(session: AmqpSession, channel: ConfirmChannel): Promise<Error> {
    const confirms = new ConfirmPublisher({ clock: liveClock, confirmTimeoutMs: this.options.confirmTimeoutMs });
    confirms.attach(channel);
    const link: Link = { session, confirms, inFlight: 0, lost: false };
    this.link = link;
    session.onLost((error) => {
      this.retire(link);
      confirms.detach(error);
    });
    this.options.logger.info({ connectionName: this.options.connectionName, broker: session.address, pending: this.accepted }, "publisher connected");
    this.pump();
    return session.lost;
  }

  /** Stops writing on `link`; its unconfirmed writes come back through `requeue` as they fail. */
  private retire(link: Link): void {
    if (link.lost) return;
    link.lost = true;
    if (this.link === link) this.link = undefined;
    if (link.inFlight > 0) this.retiring.add(link);
  }

  private pump(): void {
    const link = this.link;
    if (link === undefined || this.retiring.size > 0) return;
    if (this.requeued.length > 0) {
      // Every requeued entry was written before every waiting one.
      this.waiting = [...this.requeued.sort((a, b) => a.seq - b.seq), ...this.waiting];
      this.requeued = [];
    }
    // Refill in batches (not one by one per confirm) so the splice stays cheap.
    if (link.inFlight > MAX_IN_FLIGHT / 2 || this.waiting.length === 0) return;
    const batch = this.waiting.splice(0, MAX_IN_FLIGHT - link.inFlight);
    for (const entry of batch) this.send(link, entry);
  }

  private send(link: Link, entry: Entry): void {
    const { event } = entry;
    link.inFlight += 1;
    entry.maybeSent = true;
    const properties = eventProperties({ messageId: event.id, timestampMs: event.timestampMs, persistent: event.control !== true });
    // A control command no gateway's queue took was applied nowhere: mandatory, so it rejects (PublishUnroutableError) instead.
    const sent = event.control === true
      ? link.confirms.publish(AmqpNames.controlExchange, event.routingKey, event.body, { ...properties, mandatory: true })
      : link.confirms.publish(AmqpNames.eventsExchange, event.routingKey, event.body, properties);
    sent.then(
      () => {
        this.settleWrite(link);
        this.succeed(entry);
      },
      (error: unknown) => {
        if (error instanceof PublishConfirmTimeoutError && !link.lost) return this.confirmOverdue(link, entry, error);
        if (error instanceof BrokerUnavailableError || error instanceof PublishConfirmTimeoutError) {
          // The channel is gone or going: stop writing on it at once rather
          // than waiting for the session to report the loss.
          this.retire(link);
          this.retry(entry, error);
        } else {
          this.fail(entry, error instanceof Error ? error : new Error(String(error)));
        }
        this.settleWrite(link);
      },
    );
  }

  /**
   * A confirm did not come within `confirmTimeoutMs`: a round trip on the
   * channel tells a hung node from a slow queue behind a healthy one. Hung
   * (no answer either): the link is given up and the event written again,
   * first, on the next node, like every write of a lost connection. Healthy:
   * the broker has the event and owes only its confirm (a queue on another,
   * hung node); the link stays for everything else, and this event is
   * rejected with the retryable PublishConfirmTimeoutError, since it may or
   * may not be delivered: re-publishing it with the same id is safe.
   */
  private confirmOverdue(link: Link, entry: Entry, error: PublishConfirmTimeoutError): void {
    link.confirms.probe().then(
      () => this.fail(entry, error),
      (unanswered: Error) => {
        link.session.abandon(unanswered);
        this.retire(link);
        this.retry(entry, error);
      },
    ).finally(() => this.settleWrite(link));
  }

  /** Written on a link that is gone: written again once the old link settled, unless close() gave up. */
  private retry(entry: Entry, cause: Error): void {
    if (this.abandoning) this.fail(entry, new PublishAbandonedError(entry.event.id, true, { cause }));
    else this.requeued.push(entry);
  }

  private settleWrite(link: Link): void {
    link.inFlight -= 1;
    if (link.inFlight === 0 && this.retiring.delete(link)) this.pump();
    else if (!link.lost) this.pump();
  }

  private succeed(entry: Entry): void {
    this.accepted -= 1;
    entry.resolve({ id: entry.event.id });
    this.notifyIfIdle();
  }

  private fail(entry: Entry, error: Error): void {
    this.accepted -= 1;
    entry.reject(error);
    this.notifyIfIdle();
  }

  private whenIdle(timeoutMs: number): Promise<void> {
    if (this.accepted === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        timer.cancel();
        this.idleWaiters = this.idleWaiters.filter((waiter) => waiter !== done);
        resolve();
      };
      const timer = liveClock.setTimeout(done, timeoutMs);
      this.idleWaiters.push(done);
    });
  }

  private notifyIfIdle(): void {
    if (this.accepted !== 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const waiter of waiters) waiter();
  }
}
