import type { ConfirmChannel, Options } from "amqplib";
import { BrokerUnavailableError } from "../../core/ports/broker.js";

/** The broker refused responsibility for a message (basic.nack): resource trouble on its side, worth a retry. */
export class PublishNackedError extends Error {
  override readonly name = "PublishNackedError";
  readonly code = "publish_nacked";
  readonly retryable = true;
  constructor(message = "the broker nacked the message", options?: { cause?: unknown }) {
    super(message, options);
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

interface QueuedWrite {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly options: Options.Publish;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/**
 * Publishes on one confirm channel of the current connection.
 *
 * Guarantees: a returned promise resolves only after the broker's basic.ack,
 * rejects with `PublishNackedError` on basic.nack and with
 * `BrokerUnavailableError` when there is no channel or it closes before the
 * confirm. Writes keep their call order: once `publish` reports a full write
 * buffer, later writes wait for `drain` in a FIFO instead of piling into the
 * socket buffer.
 */
export class ConfirmPublisher {
  private channel: ConfirmChannel | undefined;
  private blocked = false;
  private queued: QueuedWrite[] = [];
  private unconfirmed = 0;
  private idleWaiters: Array<() => void> = [];

  attach(channel: ConfirmChannel): void {
    this.channel = channel;
    this.blocked = false;
    channel.on("drain", () => {
      if (this.channel === channel) this.flush();
    });
  }

  /** Fails every write still waiting for buffer space; writes already sent fail through amqplib's close callbacks. */
  detach(cause: unknown): void {
    this.channel = undefined;
    this.blocked = false;
    const queued = this.queued;
    this.queued = [];
    for (const write of queued) write.reject(new BrokerUnavailableError("broker connection lost before publish", { cause }));
    this.notifyIfIdle();
  }

  isAttached(): boolean {
    return this.channel !== undefined;
  }

  publish(exchange: string, routingKey: string, content: Buffer, options: Options.Publish): Promise<void> {
    if (this.channel === undefined) return Promise.reject(new BrokerUnavailableError());
    if (this.queued.length >= MAX_QUEUED_WRITES) {
      return Promise.reject(new BrokerUnavailableError(`publish buffer full (${MAX_QUEUED_WRITES} writes waiting)`));
    }
    return new Promise<void>((resolve, reject) => {
      const write: QueuedWrite = { exchange, routingKey, content, options, resolve, reject };
      if (this.blocked) this.queued.push(write);
      else this.send(write);
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

  private send(write: QueuedWrite): void {
    const channel = this.channel;
    if (channel === undefined) {
      write.reject(new BrokerUnavailableError());
      return;
    }
    this.unconfirmed += 1;
    let settled = false;
    const onConfirm = (error: unknown): void => {
      if (settled) return;
      settled = true;
      this.unconfirmed -= 1;
      if (error == null) write.resolve();
      else if (error instanceof Error && error.message === AMQPLIB_NACK_MESSAGE) write.reject(new PublishNackedError(undefined, { cause: error }));
      else write.reject(new BrokerUnavailableError("broker connection lost before the confirm", { cause: error }));
      this.notifyIfIdle();
    };
    try {
      const accepted = channel.publish(write.exchange, write.routingKey, write.content, write.options, onConfirm);
      if (!accepted) this.blocked = true;
    } catch (error) {
      // amqplib throws synchronously on a closed channel (IllegalOperationError)
      // and for an oversized header table (RangeError); neither wrote anything.
      settled = true;
      this.unconfirmed -= 1;
      write.reject(error instanceof RangeError ? error : new BrokerUnavailableError(undefined, { cause: error }));
      this.notifyIfIdle();
    }
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
