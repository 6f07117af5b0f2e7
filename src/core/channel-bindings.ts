import type { Broker } from "./ports/broker.js";
import type { Clock, Timer } from "./ports/clock.js";

interface BindingEntry {
  refs: number;
  /** Settles when the broker confirmed the binding; undefined after a failed bind (the next acquire retries). */
  bound: Promise<void> | undefined;
  linger: Timer | undefined;
}

/**
 * Reference-counted bindings of this node's queue, one per channel with local
 * subscribers. The first subscriber binds; the last one unbinds after
 * `lingerMs`, so reconnect churn (a client dropping and coming back) does not
 * make the broker bind and unbind the same key again and again.
 *
 * Guarantee: `acquire` resolves only once the broker confirmed the binding,
 * so an `ok` sent after it never precedes a window in which events are lost.
 */
export class ChannelBindings {
  private readonly entries = new Map<string, BindingEntry>();
  private readonly broker: Broker;
  private readonly clock: Clock;
  private readonly lingerMs: number;
  private readonly onCountChange: (count: number) => void;
  private readonly onExpired: (prefix: string) => void;

  constructor(deps: {
    broker: Broker;
    clock: Clock;
    lingerMs: number;
    onCountChange?: (count: number) => void;
    /** The prefix lost its last reference and its linger passed: per-prefix state can go. */
    onExpired?: (prefix: string) => void;
  }) {
    this.broker = deps.broker;
    this.clock = deps.clock;
    this.lingerMs = deps.lingerMs;
    this.onCountChange = deps.onCountChange ?? (() => {});
    this.onExpired = deps.onExpired ?? (() => {});
  }

  /** Takes a reference on `prefix`. On rejection the reference is already given back. */
  async acquire(prefix: string): Promise<void> {
    let entry = this.entries.get(prefix);
    if (!entry) {
      entry = { refs: 0, bound: undefined, linger: undefined };
      this.entries.set(prefix, entry);
      this.onCountChange(this.entries.size);
    }
    entry.refs += 1;
    entry.linger?.cancel();
    entry.linger = undefined;
    entry.bound ??= this.broker.bind(prefix);
    const bound = entry.bound;
    try {
      await bound;
    } catch (error) {
      if (entry.bound === bound) entry.bound = undefined;
      this.release(prefix);
      throw error;
    }
  }

  /** Gives back a reference; the binding goes after `lingerMs` if nobody took it again. */
  release(prefix: string): void {
    const entry = this.entries.get(prefix);
    if (!entry || entry.refs === 0) return;
    entry.refs -= 1;
    if (entry.refs > 0) return;
    entry.linger = this.clock.setTimeout(() => this.expire(prefix, entry), this.lingerMs);
  }

  /** Number of prefixes bound or lingering. */
  size(): number {
    return this.entries.size;
  }

  private expire(prefix: string, entry: BindingEntry): void {
    if (this.entries.get(prefix) !== entry || entry.refs > 0) return;
    this.entries.delete(prefix);
    this.onCountChange(this.entries.size);
    this.onExpired(prefix);
    // A failed unbind leaves a stray binding: harmless (events for a channel
    // nobody here watches are published to no socket) and gone with the queue.
    if (entry.bound) this.broker.unbind(prefix).catch(() => {});
  }
}
