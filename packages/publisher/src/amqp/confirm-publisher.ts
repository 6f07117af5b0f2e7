import type { ConfirmChannel, Message, Options } from "amqplib";
import { randomUUID } from "node:crypto";
import { AmqpNames } from "@sobranie/protocol/amqp";
import { BrokerUnavailableError, SobranieError } from "@sobranie/protocol/errors";
import { type Clock, systemClock, type Timer } from "@sobranie/protocol/runtime/clock";
import { DEFAULT_CONFIRM_TIMEOUT_MS } from "./reconnect.js";

/** The broker refused responsibility for a message (basic.nack): resource trouble on its side, worth a retry. */
export class PublishNackedError extends SobranieError {
  override readonly name = "PublishNackedError";
  readonly code = "publish_nacked";
  readonly retryable = true;
  constructor(message = "the broker nacked the message", options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** No confirm within the confirm timeout: the message may or may not have been taken; publishing it again is safe (consumers drop repeats by id). */
export class PublishConfirmTimeoutError extends SobranieError {
  override readonly name = "PublishConfirmTimeoutError";
  readonly code = "confirm_timeout";
  readonly retryable = true;
  constructor(timeoutMs: number) {
    super(`the broker did not confirm the message within ${timeoutMs} ms`);
  }
}

/** A `mandatory` message matched no queue (basic.return): nothing holds it, so the caller must keep it. */
export class PublishUnroutableError extends SobranieError {
  override readonly name = "PublishUnroutableError";
  readonly code = "unroutable";
  readonly retryable = true;
  constructor(exchange: string, routingKey: string) {
    super(`no queue is bound to take ${routingKey} on ${exchange}`);
  }
}

/**
 * Writes queued behind a full channel buffer before publishes start failing
 * fast. Callers await every publish, so this only bites when thousands of
 * callers publish at once into a socket the broker has stopped reading.
 */
const MAX_QUEUED_WRITES = 10_000;

/** amqplib calls a confirm callback with this message on basic.nack; anything else means the channel closed. */
const AMQPLIB_NACK_MESSAGE = "message nacked";

/** Header that pairs a basic.return with the mandatory write it belongs to (returns carry no delivery tag). */
const PUBLISH_ID_HEADER = "x-sobranie-publish-id";

/**
 * How long a routed write (publishRouted) waits for its confirm before
 * probing. A live copy's confirm normally comes in milliseconds; past a
 * second, a destination is slow or hung, and every healthy gateway would wait
 * for it with the worker's next batch.
 */
const ROUTED_CONFIRM_WAIT_MS = 1_000;

/**
 * How long a probe's round trip may take (at most the confirm timeout). A
 * node answers a passive declare in milliseconds; one that has not in 2 s is
 * hung, or has stopped reading this connection (credit flow towards a queue
 * on a hung node).
 */
const PROBE_TIMEOUT_MS = 2_000;

/** How often overdue confirms are looked for, as a fraction of the timeout. */
const SWEEPS_PER_TIMEOUT = 4;
const MIN_SWEEP_MS = 100;

export interface PublishOptions extends Options.Publish {
  /** Fail with PublishUnroutableError when no queue takes the message, instead of the broker confirming it dropped. */
  readonly mandatory?: boolean;
}

interface Write {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly options: Options.Publish;
  /** Set on mandatory writes: the id a basic.return names it by. */
  readonly publishId: string | undefined;
  /** How long the confirm may take; Infinity for writes that wait as long as it takes (publishRouted). */
  readonly timeoutMs: number;
  /** Monotonic time the confirm is overdue, set when written. */
  deadlineMs: number;
  /** Written to the channel: counted in `unconfirmed` until settled. */
  sent: boolean;
  settled: boolean;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

export interface ConfirmPublisherOptions {
  readonly clock?: Clock;
  /** Publishes not confirmed within this reject with PublishConfirmTimeoutError. */
  readonly confirmTimeoutMs?: number;
  /** A probe found the broker node unresponsive: its connection should be given up (see publishRouted). */
  readonly onUnresponsive?: (error: Error) => void;
}

/**
 * Publishes on one confirm channel of the current connection.
 *
 * Guarantees: `publish` resolves only after the broker's basic.ack; rejects
 * with `PublishNackedError` on basic.nack, with `PublishConfirmTimeoutError`
 * when no confirm came within the timeout, with `PublishUnroutableError` for
 * a mandatory message no queue took, and with `BrokerUnavailableError` when
 * there is no channel or it closes before the confirm. No wait is unbounded.
 * Writes keep their call order: once `publish` reports a full write buffer,
 * later writes wait for `drain` in a FIFO instead of piling into the socket
 * buffer.
 */
export class ConfirmPublisher {
  private readonly clock: Clock;
  private readonly confirmTimeoutMs: number;
  private channel: ConfirmChannel | undefined;
  private blocked = false;
  private queued: Write[] = [];
  /** Written and not settled, oldest first (settled ones are dropped from the head lazily). */
  private inFlight: Write[] = [];
  private unconfirmed = 0;
  private readonly returned = new Set<string>();
  private sweeper: Timer | undefined;
  private idleWaiters: Array<() => void> = [];
  /** A confirm is overdue but the node answers: routed writes skip the confirm wait until every confirm is in. */
  private slowConfirms = false;
  private probeWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  private probeScheduled = false;

  constructor(private readonly settings: ConfirmPublisherOptions = {}) {
    this.clock = settings.clock ?? systemClock;
    this.confirmTimeoutMs = settings.confirmTimeoutMs ?? DEFAULT_CONFIRM_TIMEOUT_MS;
  }

  attach(channel: ConfirmChannel): void {
    this.channel = channel;
    this.blocked = false;
    this.returned.clear();
    channel.on("drain", () => {
      if (this.channel === channel) this.flush();
    });
    channel.on("return", (message: Message) => {
      const id = message.properties.headers?.[PUBLISH_ID_HEADER];
      if (this.channel === channel && typeof id === "string") this.returned.add(id);
    });
  }

  /** Fails every write still waiting for buffer space; writes already sent fail through amqplib's close callbacks. */
  detach(cause: unknown): void {
    this.channel = undefined;
    this.blocked = false;
    const queued = this.queued;
    this.queued = [];
    for (const write of queued) this.finish(write, new BrokerUnavailableError("broker connection lost before publish", { cause }));
    const probing = this.probeWaiters;
    this.probeWaiters = [];
    for (const waiter of probing) waiter.reject(new BrokerUnavailableError("broker connection lost before the probe", { cause }));
    this.notifyIfIdle();
  }

  isAttached(): boolean {
    return this.channel !== undefined;
  }

  publish(exchange: string, routingKey: string, content: Buffer, options: PublishOptions): Promise<void> {
    return this.write(exchange, routingKey, content, options, this.confirmTimeoutMs);
  }

  /**
   * For live copies of stored events (the worker's relay to `sobranie.live`),
   * whose only destinations are gateways' node queues: resolves on the
   * confirm, or, when the confirm is overdue, once a round trip on the same
   * channel shows this broker node has routed the message. An overdue confirm
   * with an answering node means a destination queue is on a hung or
   * partitioned node; the gateway consuming it loses its connection and
   * repairs its channels from the event store, so waiting for that queue
   * would only stall every healthy gateway. A confirm counts as overdue after
   * a second (ROUTED_CONFIRM_WAIT_MS); until every outstanding confirm has
   * come in, later writes are probed at once instead of waiting again.
   * When the probe is not answered either, this node is the hung one: it
   * rejects with BrokerUnavailableError and reports `onUnresponsive`.
   */
  publishRouted(exchange: string, routingKey: string, content: Buffer, options: PublishOptions): Promise<void> {
    const confirmed = this.write(exchange, routingKey, content, options, Number.POSITIVE_INFINITY);
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (error?: Error): void => {
        if (done) return;
        done = true;
        timer?.cancel();
        if (error) reject(error);
        else resolve();
      };
      confirmed.then(() => finish(), (error: Error) => finish(error));
      const probe = (): void => {
        if (done) return;
        this.probe().then(
          () => {
            if (!done) this.slowConfirms = true;
            finish();
          },
          (error: Error) => finish(error),
        );
      };
      const waitMs = Math.min(ROUTED_CONFIRM_WAIT_MS, this.confirmTimeoutMs);
      const timer: Timer | undefined = this.slowConfirms ? undefined : this.clock.setTimeout(probe, waitMs);
      if (this.slowConfirms) probe();
    });
  }

  /** Resolves once nothing is queued or awaiting a confirm, or after `timeoutMs`; never rejects. */
  settle(timeoutMs: number): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.idleWaiters = self.idleWaiters.filter((waiter) => waiter !== done);
        resolve();
      }
      this.idleWaiters.push(done);
    });
  }

  private write(exchange: string, routingKey: string, content: Buffer, options: PublishOptions, timeoutMs: number): Promise<void> {
    if (this.channel === undefined) return Promise.reject(new BrokerUnavailableError());
    if (this.queued.length >= MAX_QUEUED_WRITES) {
      return Promise.reject(new BrokerUnavailableError(`publish buffer full (${MAX_QUEUED_WRITES} writes waiting)`));
    }
    const publishId = options.mandatory ? randomUUID() : undefined;
    const { mandatory, ...rest } = options;
    const amqpOptions: Options.Publish =
      publishId === undefined ? rest : { ...rest, mandatory: true, headers: { ...rest.headers, [PUBLISH_ID_HEADER]: publishId } };
    return new Promise<void>((resolve, reject) => {
      const write: Write = { exchange, routingKey, content, options: amqpOptions, publishId, timeoutMs, deadlineMs: 0, sent: false, settled: false, resolve, reject };
      if (this.blocked) this.queued.push(write);
      else this.send(write);
    });
  }

  private send(write: Write): void {
    const channel = this.channel;
    if (channel === undefined) return this.finish(write, new BrokerUnavailableError());
    this.unconfirmed += 1;
    write.sent = true;
    write.deadlineMs = this.clock.monotonic() + write.timeoutMs;
    this.inFlight.push(write);
    this.armSweeper();
    const onConfirm = (error: unknown): void => {
      if (write.publishId !== undefined && this.returned.delete(write.publishId) && error == null) {
        return this.finish(write, new PublishUnroutableError(write.exchange, write.routingKey));
      }
      if (error == null) this.finish(write);
      else if (error instanceof Error && error.message === AMQPLIB_NACK_MESSAGE) this.finish(write, new PublishNackedError(undefined, { cause: error }));
      else this.finish(write, new BrokerUnavailableError("broker connection lost before the confirm", { cause: error }));
    };
    try {
      const accepted = channel.publish(write.exchange, write.routingKey, write.content, write.options, onConfirm);
      if (!accepted) this.blocked = true;
    } catch (error) {
      // amqplib throws synchronously on a closed channel (IllegalOperationError)
      // and for an oversized header table (RangeError); neither wrote anything.
      this.finish(write, error instanceof RangeError ? error : new BrokerUnavailableError(undefined, { cause: error }));
    }
  }

  /** Settles a write once (a late confirm after a timeout is ignored). */
  private finish(write: Write, error?: Error): void {
    if (write.settled) return;
    write.settled = true;
    if (write.sent) {
      this.unconfirmed -= 1;
      this.compactInFlight();
      if (this.unconfirmed === 0) this.slowConfirms = false;
    }
    if (error) write.reject(error);
    else write.resolve();
    this.notifyIfIdle();
  }

  /** Drops settled writes: from the head at once, from the middle when they outnumber the unsettled (a stuck write at the head). */
  private compactInFlight(): void {
    while (this.inFlight[0]?.settled) this.inFlight.shift();
    if (this.inFlight.length > 2 * this.unconfirmed + 1_000) this.inFlight = this.inFlight.filter((write) => !write.settled);
  }

  /** One sweep timer while confirms are outstanding: overdue ones reject, in write order. */
  private armSweeper(): void {
    if (this.sweeper) return;
    const everyMs = Math.max(MIN_SWEEP_MS, Math.floor(this.confirmTimeoutMs / SWEEPS_PER_TIMEOUT));
    this.sweeper = this.clock.setInterval(() => {
      const nowMs = this.clock.monotonic();
      for (const write of [...this.inFlight]) {
        if (!write.settled && write.deadlineMs <= nowMs) this.finish(write, new PublishConfirmTimeoutError(write.timeoutMs));
      }
      this.compactInFlight();
      if (this.inFlight.length === 0) {
        this.sweeper?.cancel();
        this.sweeper = undefined;
      }
    }, everyMs);
  }

  /**
   * A passive exchange check on the publishing channel, issued after every
   * write made so far: the broker answers a channel's frames in order, so its
   * answer means it routed all of them. Rejects with BrokerUnavailableError
   * (and reports `onUnresponsive`) when the node does not answer within the
   * confirm timeout. Concurrent callers share one probe.
   */
  probe(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.probeWaiters.push({ resolve, reject });
      if (this.probeScheduled) return;
      this.probeScheduled = true;
      setImmediate(() => this.runProbe());
    });
  }

  private runProbe(): void {
    this.probeScheduled = false;
    const waiters = this.probeWaiters;
    this.probeWaiters = [];
    const channel = this.channel;
    if (!channel) {
      for (const waiter of waiters) waiter.reject(new BrokerUnavailableError());
      return;
    }
    let answered = false;
    const timeoutMs = Math.min(PROBE_TIMEOUT_MS, this.confirmTimeoutMs);
    const timer = this.clock.setTimeout(() => {
      if (answered) return;
      answered = true;
      const error = new BrokerUnavailableError(`the broker node did not answer a probe within ${timeoutMs} ms: it is hung, or no longer reads this connection`);
      for (const waiter of waiters) waiter.reject(error);
      this.settings.onUnresponsive?.(error);
    }, timeoutMs);
    channel.checkExchange(AmqpNames.liveExchange).then(
      () => {
        if (answered) return;
        answered = true;
        timer.cancel();
        for (const waiter of waiters) waiter.resolve();
      },
      (error: unknown) => {
        if (answered) return;
        answered = true;
        timer.cancel();
        for (const waiter of waiters) waiter.reject(new BrokerUnavailableError("the probe failed", { cause: error }));
      },
    );
  }

  private flush(): void {
    this.blocked = false;
    while (!this.blocked && this.queued.length > 0) {
      const write = this.queued.shift();
      if (write) this.send(write);
    }
  }

  private isIdle(): boolean {
    return this.unconfirmed === 0 && this.queued.length === 0;
  }

  private notifyIfIdle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const waiter of waiters) waiter();
  }
}
