import type { Broker } from "./ports/broker.js";
import type { Clock, Timer } from "@sobranie/protocol/runtime/clock";

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
 * A namespace in `wholeNamespaces` is bound once as a whole (`<ns>.#`, by
 * `bindWholeNamespaces` at start, and kept for the node's life) and its
 * channels cost the broker nothing: the reference counts still say which
 * channels have local subscribers (`has`), so the gateway can drop the
 * namespace's other events, which now reach this node too.
 *
 * Guarantee: `acquire` resolves only once the broker confirmed the binding
 * (the channel's own, or its namespace's), so an `ok` sent after it never
 * precedes a window in which events are lost.
 */
export class ChannelBindings {
  private readonly entries = new Map<string, BindingEntry>();
  private readonly broker: Broker;
  private readonly clock: Clock;
  private readonly lingerMs: number;
  private readonly onCountChange: (count: number) => void;
  private readonly onExpired: (prefix: string) => void;
  /** Namespace bound as a whole → its binding (undefined until made, or after it failed: the next acquire retries). */
  private readonly whole = new Map<string, Promise<void> | undefined>();
  /** Entries of whole namespaces: they hold no binding of their own, so `onCountChange` leaves them out. */
  private wholeEntries = 0;

  constructor(deps: {
    broker: Broker;
    clock: Clock;
    lingerMs: number;
    /** Bindings on the broker changed: one per channel bound or lingering, plus one per whole namespace. */
    onCountChange?: (count: number) => void;
    /** The prefix lost its last reference and its linger passed: per-prefix state can go. */
    onExpired?: (prefix: string) => void;
    /** Namespaces bound as `<ns>.#` instead of per channel (BIND_WHOLE_NAMESPACES). */
    wholeNamespaces?: readonly string[];
  }) {
    this.broker = deps.broker;
    this.clock = deps.clock;
    this.lingerMs = deps.lingerMs;
    this.onCountChange = deps.onCountChange ?? (() => {});
    this.onExpired = deps.onExpired ?? (() => {});
    for (const namespace of deps.wholeNamespaces ?? []) this.whole.set(namespace, undefined);
    if (this.whole.size > 0) this.onCountChange(this.whole.size);
  }

  /**
   * Binds every whole namespace. Called before the broker starts, so the
   * broker makes these bindings while connecting and reports ready only after
   * (and makes them again after every reconnect).
   */
  bindWholeNamespaces(): void {
    for (const namespace of this.whole.keys()) this.wholeBinding(namespace).catch(() => {});
  }

  /** Whether `namespace` is bound as a whole, so its events arrive whether or not a channel of it has local subscribers. */
  isWhole(namespace: string): boolean {
    return this.whole.has(namespace);
  }

  /** Whether `prefix` has local subscribers, or lost its last one less than `lingerMs` ago. */
  has(prefix: string): boolean {
    return this.entries.has(prefix);
  }

  /** Takes a reference on `prefix`. On rejection the reference is already given back. */
  async acquire(prefix: string): Promise<void> {
    let entry = this.entries.get(prefix);
    if (!entry) {
      entry = { refs: 0, bound: undefined, linger: undefined };
      this.entries.set(prefix, entry);
      if (this.whole.has(namespaceOf(prefix))) this.wholeEntries += 1;
      else this.onCountChange(this.bindingCount());
    }
    entry.refs += 1;
    entry.linger?.cancel();
    entry.linger = undefined;
    entry.bound ??= this.bindingFor(prefix);
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

  /** Prefixes with local subscribers or lingering (whole namespaces' channels included). */
  prefixes(): string[] {
    return [...this.entries.keys()];
  }

  /** Number of prefixes with local subscribers or lingering (whole namespaces' channels included). */
  size(): number {
    return this.entries.size;
  }

  private expire(prefix: string, entry: BindingEntry): void {
    if (this.entries.get(prefix) !== entry || entry.refs > 0) return;
    this.entries.delete(prefix);
    this.onExpired(prefix);
    if (this.whole.has(namespaceOf(prefix))) {
      this.wholeEntries -= 1;
      return;
    }
    this.onCountChange(this.bindingCount());
    // A failed unbind leaves a stray binding: harmless (events for a channel
    // nobody here watches are published to no socket) and gone with the queue.
    if (entry.bound) this.broker.unbind(prefix).catch(() => {});
  }

  private bindingCount(): number {
    return this.entries.size - this.wholeEntries + this.whole.size;
  }

  private bindingFor(prefix: string): Promise<void> {
    const namespace = namespaceOf(prefix);
    return this.whole.has(namespace) ? this.wholeBinding(namespace) : this.broker.bind(prefix);
  }

  private wholeBinding(namespace: string): Promise<void> {
    const existing = this.whole.get(namespace);
    if (existing) return existing;
    const binding = this.broker.bind(namespace);
    this.whole.set(namespace, binding);
    binding.catch(() => {
      if (this.whole.get(namespace) === binding) this.whole.set(namespace, undefined);
    });
    return binding;
  }
}

/** `room.7` → `room`. */
function namespaceOf(prefix: string): string {
  const dot = prefix.indexOf(".");
  return dot < 0 ? prefix : prefix.slice(0, dot);
}
