import type { Channel } from "@sobranie/protocol/channel";
import { encodeServerFrame } from "@sobranie/protocol/frames";
import type { EventStore, HistoryPage } from "./ports/event-store.js";
import type { SessionSocket } from "./ports/session-socket.js";
import { storedEventFrame } from "./event-frames.js";
import type { RecoverySink, SessionContext } from "./session-context.js";
import type { SessionReplies } from "./session-replies.js";

/**
 * The recoveries of one session (subscribes with `since`), by channel. Each
 * ends its own: once caught up, or by `stop` when its subscription ends, and
 * ending one twice is harmless.
 */
export class SessionRecoveries {
  /** Recoveries still forwarding live events by hand, by channel. */
  private readonly running = new Map<string, () => void>();

  constructor(
    private readonly deps: {
      readonly sessionId: string;
      readonly ctx: SessionContext;
      readonly socket: SessionSocket;
      readonly replies: SessionReplies;
    },
  ) {}

  /** Ends the channel's recovery, if one is running (its subscription ended). */
  stop(channel: string): void {
    this.running.get(channel)?.();
  }

  /** Ends every running recovery (the session closed). */
  stopAll(): void {
    for (const stop of [...this.running.values()]) stop();
  }

  /**
   * Subscribe with `since`: live first, history second, merged by seq.
   * `subscribed` says whether the subscription this recovery serves still
   * stands (the session open, the channel's entry the same one).
   *
   * Live events of the channel are buffered from before the history read
   * starts, so an event committed after the read is in the buffer and one
   * committed before it is in the history; events in both are dropped by seq.
   * The live copy of an event committed before the read may still be on its
   * way to this node when the history is sent: until the node's live stream
   * has reached the last seq sent (a live event with that seq or a later one
   * arrived), live events keep coming through the sink and those already sent
   * are dropped. Only then is the native subscription made, in the same
   * synchronous step as the last sink call, so no live event slips between.
   */
  async recover(ref: number | undefined, channel: Channel, since: number, store: EventStore, subscribed: () => boolean): Promise<void> {
    const { ctx, socket } = this.deps;
    const buffered: Array<{ seq: number | undefined; text: string }> = [];
    let lastSeq = since;
    let caughtUp = false;
    const deliver = (seq: number | undefined, text: string): void => {
      if (seq !== undefined && seq <= lastSeq) {
        caughtUp ||= seq === lastSeq;
        return;
      }
      socket.send(text);
      if (seq === undefined) return;
      lastSeq = seq;
      caughtUp = true;
    };
    let forwarding = false;
    const sink: RecoverySink = (seq, text) => {
      if (!forwarding) return void buffered.push({ seq, text });
      deliver(seq, text);
      if (caughtUp) join();
    };
    // May run twice (unsubscribed while reading, then the read returns): by then
    // a new subscribe of the channel may be recovering, and its entry is not ours.
    const stop = (): void => {
      if (this.running.get(channel.name) === stop) this.running.delete(channel.name);
      ctx.endRecovery(channel.name, sink);
    };
    const join = (): void => {
      stop();
      socket.subscribe(channel.name);
    };
    ctx.beginRecovery(channel.name, sink);
    this.running.set(channel.name, stop);
    let page: HistoryPage | undefined;
    try {
      page = await store.history(channel.name, since, ctx.recoveryLimit);
    } catch (error) {
      ctx.logger.warn({ err: error, session: this.deps.sessionId }, "history unavailable: subscribing without recovery");
    }
    if (!subscribed()) {
      // Unsubscribed or closed while reading: that ended the recovery and gave the binding back.
      stop();
      return;
    }
    const history = page?.events ?? [];
    const truncated = history.length >= ctx.recoveryLimit;
    this.deps.replies.ok(ref, { recovered: page !== undefined && page.complete && !truncated, missed: history.length });
    for (const event of history) {
      socket.send(encodeServerFrame(storedEventFrame(event)));
      lastSeq = event.seq;
    }
    for (const live of buffered) deliver(live.seq, live.text);
    if (caughtUp) return join();
    forwarding = true;
  }
}
