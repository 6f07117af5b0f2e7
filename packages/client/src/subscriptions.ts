import { ChannelCursor } from "./dedupe.js";
import type { Emitter } from "./emitter.js";
import { RealtimeError, type RealtimeEvent, type ServerFrame, type SubscribeResult } from "./types.js";

type Handler = (event: RealtimeEvent<any>) => void;

/** One channel the app subscribed to: its handlers, and what the current connection's server said of it. */
export interface Subscription {
  readonly channel: string;
  readonly handlers: Set<Handler>;
  readonly presence: boolean;
  /** What the channel has delivered: the `since` of a resubscribe, and the de-duplication of repeats. */
  readonly cursor: ChannelCursor;
  /** The server's accepted subscribe on the current connection; undefined until then (and again after a drop). */
  confirmed: SubscribeResult | undefined;
  waiters: Array<{ resolve(result: SubscribeResult): void; reject(error: RealtimeError): void }>;
}

export interface SubscriptionsDeps {
  readonly events: Emitter;
  /** `channel` left the table (unsubscribed, refused for good, ended by the server). */
  forgotten(channel: string): void;
}

/** Subscription errors after which the channel is dropped instead of retried on the next connection. */
const PERMANENT_ERRORS = new Set(["bad_request", "forbidden", "not_found", "limit_exceeded"]);

/**
 * The app's subscriptions, which outlive connections: each one is
 * resubscribed on every new connection, with its cursor, until the app
 * unsubscribes, the server refuses it for good, or the server ends it.
 *
 * Guarantees: each `subscribe` promise settles once; a handler gets each
 * event once, in order; a reply about an entry since removed (or replaced by
 * a new subscribe to the same channel) changes nothing.
 */
export class Subscriptions {
  private readonly subs = new Map<string, Subscription>();

  constructor(private readonly deps: SubscriptionsDeps) {}

  /** The channels, in the order first subscribed. */
  channels(): string[] {
    return [...this.subs.keys()];
  }

  all(): IterableIterator<Subscription> {
    return this.subs.values();
  }

  get(channel: string): Subscription | undefined {
    return this.subs.get(channel);
  }

  has(channel: string): boolean {
    return this.subs.has(channel);
  }

  /** False once `sub` was removed from the table (a later subscribe to its channel is another entry). */
  isCurrent(sub: Subscription): boolean {
    return this.subs.get(sub.channel) === sub;
  }

  /** Adds `handler` to `channel`'s entry, creating it (`isNew`: the server must be told); `result` settles with the server's answer. */
  add(channel: string, handler: Handler, presence: boolean): { sub: Subscription; isNew: boolean; result: Promise<SubscribeResult> } {
    let sub = this.subs.get(channel);
    const isNew = !sub;
    if (!sub) {
      sub = { channel, handlers: new Set(), presence, cursor: new ChannelCursor(), confirmed: undefined, waiters: [] };
      this.subs.set(channel, sub);
    }
    sub.handlers.add(handler);
    if (sub.confirmed) return { sub, isNew, result: Promise.resolve(sub.confirmed) };
    const subscription = sub;
    const result = new Promise<SubscribeResult>((resolve, reject) => subscription.waiters.push({ resolve, reject }));
    return { sub, isNew, result };
  }

  /** Removes `handler` (or every handler) of `channel`; true when the channel left the table (the server must be told). */
  remove(channel: string, handler: Handler | undefined): boolean {
    const sub = this.subs.get(channel);
    if (!sub) return false;
    if (handler) sub.handlers.delete(handler);
    if (handler && sub.handlers.size > 0) return false;
    this.subs.delete(channel);
    this.deps.forgotten(channel);
    for (const waiter of sub.waiters) waiter.reject(new RealtimeError("closed", `unsubscribed from ${channel}`));
    return true;
  }

  /** Hands an event to its channel's handlers, then to `event` listeners; a repeat (by seq or id) or an unknown channel's event is dropped. */
  deliver(frame: Extract<ServerFrame, { op: "event" }>): void {
    const sub = this.subs.get(frame.channel);
    if (!sub || !sub.cursor.accept(frame.id, frame.seq)) return;
    const event: RealtimeEvent = { channel: frame.channel, id: frame.id, type: frame.type, data: frame.data, ts: frame.ts, ...(frame.seq === undefined ? {} : { seq: frame.seq }) };
    for (const handler of sub.handlers) handler(event);
    this.deps.events.emit("event", event);
  }

  /** The server accepted `sub`; `askedToRecover` (the subscribe named where to resume): a `gap` when it could not return everything missed. */
  subscribed(sub: Subscription, result: SubscribeResult, askedToRecover: boolean): void {
    if (!this.isCurrent(sub)) return;
    sub.confirmed = result;
    if (askedToRecover && !result.recovered) this.deps.events.emit("gap", { channel: sub.channel, reason: "incomplete", missed: result.missed });
    const waiters = sub.waiters;
    sub.waiters = [];
    for (const waiter of waiters) waiter.resolve(result);
  }

  /** The server (or the subscription token provider) refused `sub`: a permanent refusal removes it; `connection_lost` waits for the next connection. */
  refused(sub: Subscription, error: RealtimeError): void {
    if (!this.isCurrent(sub)) return;
    if (error.code === "connection_lost") return; // resubscribed on the next connection
    if (PERMANENT_ERRORS.has(error.code)) {
      this.subs.delete(sub.channel);
      this.deps.forgotten(sub.channel);
    }
    const waiters = sub.waiters;
    sub.waiters = [];
    for (const waiter of waiters) waiter.reject(error);
    this.deps.events.emit("error", error);
  }

  /** The server ended a subscription: forget it (no resubscribe, not even after a reconnect) and say why. */
  droppedByServer(channel: string, reason: "revoked" | "forbidden" | "expired"): void {
    const sub = this.subs.get(channel);
    if (!sub) return;
    this.subs.delete(channel);
    this.deps.forgotten(channel);
    for (const waiter of sub.waiters) waiter.reject(new RealtimeError(reason, `the server ended the subscription to ${channel} (${reason})`));
    this.deps.events.emit("unsubscribed", { channel, reason });
  }

  /** The connection is gone: every subscription needs the next connection's answer. */
  unconfirmAll(): void {
    for (const sub of this.subs.values()) sub.confirmed = undefined;
  }

  /** The client closed: every pending subscribe rejects with `closed`, and the table empties. */
  closeAll(): void {
    for (const sub of this.subs.values()) for (const waiter of sub.waiters) waiter.reject(new RealtimeError("closed", "client closed"));
    this.subs.clear();
  }
}
