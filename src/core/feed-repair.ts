import { GapReason } from "@sobranie/protocol/codes";
import { fullJitterDelayMs, sleep, type BackoffOptions } from "@sobranie/protocol/runtime/backoff";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { EventStore, HistoryPage, StoredEvent } from "./ports/event-store.js";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Metrics } from "./ports/metrics.js";

/** A live delivery of a channel under repair, kept until the channel's history has been sent. */
export interface HeldDelivery {
  readonly seq: number;
  /** Hands it to the node's delivery path (which drops a seq already delivered). */
  readonly deliver: () => void;
}

export interface FeedRepairDeps {
  /** Absent on a gateway without DATABASE_URL: durable channels then get `gap incomplete` instead of a repair. */
  readonly store: EventStore | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** History read per store call. */
  readonly pageSize: number;
  /** Channels (`namespace:id`) with local subscribers now, split by whether their namespace is durable. */
  subscribedChannels(): { durable: string[]; liveOnly: string[] };
  isSubscribed(channel: string): boolean;
  /** Hands a stored event to the node's delivery path; false when it dropped it (that seq was delivered before). */
  deliverStored(event: StoredEvent): boolean;
  /** Tells the channel's local subscribers that events may be missing. */
  announceGap(channel: string, reason: GapReason): void;
}

interface Pending {
  /** Every event of the channel this node missed has a higher seq; undefined: no position was known. */
  readonly since: number | undefined;
  held: HeldDelivery[];
  /** Live deliveries were dropped past MAX_HELD: the history is read again after the held ones are sent. */
  overflowed: boolean;
}

/** Channels repaired at once (store reads in flight). */
const REPAIR_CONCURRENCY = 8;
/** Live deliveries kept per channel during its repair; past it they are re-read from the store instead. */
const MAX_HELD = 10_000;
/** Store failures tolerated per page before the channel is given up with `gap incomplete` (about a minute of retries). */
const STORE_ATTEMPTS = 12;
const STORE_RETRY: BackoffOptions = { initialDelayMs: 250, maxDelayMs: 10_000 };

/**
 * Repairs what this node missed while its broker feed was interrupted.
 *
 * The node queue does not outlive a broker connection, so every interruption
 * can lose deliveries. Guarantee: for each durable channel that had local
 * subscribers when the feed was lost and still has them, every event stored
 * after the node's last position is delivered to those subscribers once, in
 * seq order, before any live delivery of that channel that arrives after the
 * loss (those are held meanwhile and merged by seq). Subscribers stay
 * connected and see no difference but the delay. Where the history cannot be
 * complete (no store on this node, retention removed events, the store stayed
 * unreachable) they get `gap incomplete`; subscribers of non-durable channels
 * get `gap interrupted`, since nothing can replay those.
 *
 * Why one position for all channels: the worker relays durable events in seq
 * order (one active consumer, one batch at a time, writes in order), and they
 * reach this node's queue in that order. So every event the node missed has a
 * higher seq than the last durable event it received live. Before the first
 * one, the store's latest seq read before connecting stands in.
 */
export class FeedRepair {
  private readonly deps: FeedRepairDeps;
  /** Highest durable seq received from the live feed (or the store's latest before the first connect). */
  private feedSeq: number | undefined;
  private readonly pending = new Map<string, Pending>();
  private readonly liveOnlyAtLoss = new Set<string>();
  private interrupted = false;
  /** Bumped by every loss: a repair started before it stops and leaves its channel pending. */
  private generation = 0;
  private readonly stopping = new AbortController();

  constructor(deps: FeedRepairDeps) {
    this.deps = deps;
  }

  /** Reads the starting position; call before the broker connects. Never rejects. */
  async start(): Promise<void> {
    const store = this.deps.store;
    if (!store) return;
    try {
      const latest = await store.latestSeq();
      this.feedSeq = Math.max(this.feedSeq ?? 0, latest);
    } catch (error) {
      this.deps.logger.warn({ err: error }, "feed repair: no starting position (store unreachable); it is set by the first durable event");
    }
  }

  stop(): void {
    this.stopping.abort();
    this.generation += 1;
  }

  /** A durable event came from the live feed. */
  received(seq: number): void {
    if (this.feedSeq === undefined || seq > this.feedSeq) this.feedSeq = seq;
  }

  /** Whether live deliveries of `channel` must be held (its repair has not finished). */
  holds(channel: string): boolean {
    return this.pending.has(channel);
  }

  hold(channel: string, delivery: HeldDelivery): void {
    const entry = this.pending.get(channel);
    if (!entry) return delivery.deliver();
    if (entry.held.length < MAX_HELD) entry.held.push(delivery);
    else entry.overflowed = true;
  }

  /** The broker feed was lost: from now on the subscribed durable channels' live deliveries are held. */
  feedLost(): void {
    if (this.stopping.signal.aborted) return;
    this.interrupted = true;
    this.generation += 1;
    const { durable, liveOnly } = this.deps.subscribedChannels();
    for (const channel of durable) {
      if (!this.pending.has(channel)) this.pending.set(channel, { since: this.feedSeq, held: [], overflowed: false });
    }
    for (const channel of liveOnly) this.liveOnlyAtLoss.add(channel);
  }

  /** The feed is back (new queue consuming, bindings made): repair every held channel. */
  feedBack(): void {
    if (this.stopping.signal.aborted || !this.interrupted) return;
    this.interrupted = false;
    const generation = this.generation;
    for (const channel of this.liveOnlyAtLoss) if (this.deps.isSubscribed(channel)) this.deps.announceGap(channel, GapReason.Interrupted);
    this.liveOnlyAtLoss.clear();
    const channels = [...this.pending.keys()];
    if (channels.length === 0) return;
    const startedMs = this.deps.clock.monotonic();
    this.deps.logger.info({ channels: channels.length, since: this.feedSeq }, "broker feed back: repairing durable channels from the store");
    const queue = [...channels];
    const worker = async (): Promise<void> => {
      for (let channel = queue.shift(); channel !== undefined; channel = queue.shift()) {
        if (generation !== this.generation) return;
        await this.repair(channel, generation);
      }
    };
    void Promise.all(Array.from({ length: Math.min(REPAIR_CONCURRENCY, channels.length) }, worker)).then(() => {
      if (generation !== this.generation) return;
      this.deps.logger.info({ channels: channels.length, ms: Math.round(this.deps.clock.monotonic() - startedMs) }, "feed repair done");
    });
  }

  private async repair(channel: string, generation: number): Promise<void> {
    const entry = this.pending.get(channel);
    if (!entry) return;
    const store = this.deps.store;
    if (!store || entry.since === undefined) return this.finish(channel, entry, "gap");
    let cursor = entry.since;
    let gapAnnounced = false;
    for (;;) {
      const page = await this.read(store, channel, cursor, generation);
      if (generation !== this.generation) return;
      if (!this.deps.isSubscribed(channel)) return void this.pending.delete(channel);
      if (page === undefined) return this.finish(channel, entry, gapAnnounced ? "announced" : "gap");
      if (!page.complete && !gapAnnounced) {
        // Retention removed some of what was missed: say so before what remains.
        gapAnnounced = true;
        this.deps.announceGap(channel, GapReason.Incomplete);
      }
      // Pages are sent as they come: held live deliveries all follow the last page, merged by seq.
      let repaired = 0;
      for (const event of page.events) if (this.deps.deliverStored(event)) repaired += 1;
      if (repaired > 0) this.deps.metrics.eventsRepaired(namespaceOf(channel), repaired);
      cursor = page.events.at(-1)?.seq ?? cursor;
      if (page.events.length >= this.deps.pageSize) continue;
      if (!entry.overflowed) return this.finish(channel, entry, "complete");
      // Live deliveries were dropped while this ran: send those held, then read what followed them.
      const held = entry.held;
      entry.held = [];
      entry.overflowed = false;
      for (const delivery of held) delivery.deliver();
      cursor = Math.max(cursor, held.at(-1)?.seq ?? cursor);
    }
  }

  /**
   * Ends the repair in one synchronous step: the gap (when the history could
   * not be read, it comes before what arrived live since), then the held
   * live deliveries.
   */
  private finish(channel: string, entry: Pending, outcome: "complete" | "announced" | "gap"): void {
    this.pending.delete(channel);
    if (outcome === "gap") this.deps.announceGap(channel, GapReason.Incomplete);
    for (const delivery of entry.held) delivery.deliver();
  }

  /** One page, retrying store failures with backoff; undefined when the store stayed unreachable. */
  private async read(store: EventStore, channel: string, afterSeq: number, generation: number): Promise<HistoryPage | undefined> {
    for (let failures = 0; failures < STORE_ATTEMPTS; failures += 1) {
      try {
        return await store.history(channel, afterSeq, this.deps.pageSize);
      } catch (error) {
        if (generation !== this.generation) return undefined;
        this.deps.logger.warn({ err: error, channel, failures: failures + 1 }, "feed repair: history unavailable; retrying");
        await sleep(this.deps.clock, Math.max(STORE_RETRY.initialDelayMs, fullJitterDelayMs(STORE_RETRY, failures)), this.stopping.signal);
      }
    }
    this.deps.logger.warn({ channel }, "feed repair: history stayed unavailable; its subscribers are told of the gap");
    return undefined;
  }
}

function namespaceOf(channel: string): string {
  return channel.slice(0, Math.max(0, channel.indexOf(":")));
}
