import type { Channel } from "amqplib";
import { BrokerUnavailableError } from "@sobranie/protocol/errors";
import { AmqpNames } from "@sobranie/protocol/amqp";
import { liveBindingKey } from "./topology.js";

/**
 * The live-exchange bindings of this node's queue.
 *
 * Why a pool: amqplib allows one outstanding RPC per channel, so on a single
 * channel N binds cost N round trips in a row. With several channels the
 * binds are in flight together. Every operation on one prefix goes to the
 * same channel (by hash), and a channel answers in order, so bind and unbind
 * of one prefix can never overtake each other.
 *
 * State kept across reconnects: `desired`, the prefixes that should be
 * bound, made again on every reconnect. Each connection has a new node queue
 * with no bindings (the old one went with its connection), so nothing is
 * ever left to unbind after a reconnect, and none at stop: closing the
 * connection removes the queue and its bindings at once.
 */
export class BindingPool {
  private readonly desired = new Set<string>();
  private channels: readonly Channel[] | undefined;
  private queue = "";
  private restoreWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  private closedWith: Error | undefined;

  constructor(private readonly onCountChange: (count: number) => void = () => {}) {}

  get size(): number {
    return this.desired.size;
  }

  prefixes(): string[] {
    return [...this.desired];
  }

  /**
   * Takes the channels of a new connection and makes every wanted binding on
   * its new queue, pipelined. Rejects if any of them fails (the caller tears
   * the connection down and retries). Operations issued while this runs go
   * straight to the channels, ordered after the restore's own operation for
   * the same prefix.
   */
  async attachAndRestore(channels: readonly Channel[], queue: string): Promise<void> {
    this.channels = channels;
    this.queue = queue;
    const operations = [...this.desired].map((prefix) =>
      this.channelFor(prefix, channels).bindQueue(queue, AmqpNames.liveExchange, liveBindingKey(prefix)),
    );
    try {
      await Promise.all(operations);
    } finally {
      // Siblings of a failed operation reject too when the channel closes; they are already accounted for.
      for (const operation of operations) operation.catch(() => {});
    }
  }

  /** Everything wanted is bound on the server: binds that waited for the reconnect resolve now. */
  markRestored(): void {
    const waiters = this.restoreWaiters;
    this.restoreWaiters = [];
    for (const waiter of waiters) waiter.resolve();
  }

  /** The channels are gone; binds now wait for the next `attachAndRestore` + `markRestored`. */
  detach(): void {
    this.channels = undefined;
  }

  /** Stops for good: waiting binds reject, later calls reject. */
  close(error: Error): void {
    this.closedWith = error;
    this.channels = undefined;
    const waiters = this.restoreWaiters;
    this.restoreWaiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  async bind(prefix: string): Promise<void> {
    if (this.closedWith) throw this.closedWith;
    if (!this.desired.has(prefix)) {
      this.desired.add(prefix);
      this.onCountChange(this.desired.size);
    }
    const channels = this.channels;
    if (channels === undefined) return this.waitForRestore();
    try {
      await this.channelFor(prefix, channels).bindQueue(this.queue, AmqpNames.liveExchange, liveBindingKey(prefix));
    } catch {
      // The channel closed under us; the connection is being recovered and
      // the prefix is still wanted, so the restore will bind it.
      return this.waitForRestore();
    }
  }

  /**
   * Removes the binding from the current queue. While disconnected there is
   * nothing to remove: the next queue is only given the desired bindings. A
   * failed unbind leaves a stray binding, harmless (events for a channel
   * nobody here watches reach no socket) and gone with the connection.
   */
  async unbind(prefix: string): Promise<void> {
    if (this.desired.delete(prefix)) this.onCountChange(this.desired.size);
    const channels = this.channels;
    if (channels === undefined || this.closedWith) return;
    await this.channelFor(prefix, channels)
      .unbindQueue(this.queue, AmqpNames.liveExchange, liveBindingKey(prefix))
      .catch(() => undefined);
  }

  /** At stop: nothing is wanted any more (the bindings go with the connection's queue). */
  clear(): void {
    if (this.desired.size > 0) this.onCountChange(0);
    this.desired.clear();
  }

  private waitForRestore(): Promise<void> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => this.restoreWaiters.push({ resolve, reject }));
  }

  private channelFor(prefix: string, channels: readonly Channel[]): Channel {
    const channel = channels[fnv1a(prefix) % channels.length];
    if (channel === undefined) throw new BrokerUnavailableError("binding pool has no channels");
    return channel;
  }
}

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** 32-bit FNV-1a: cheap, stable and well spread for short keys like `room.7`. */
function fnv1a(text: string): number {
  let hash = FNV_OFFSET_BASIS;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, FNV_PRIME);
  }
  return hash >>> 0;
}
