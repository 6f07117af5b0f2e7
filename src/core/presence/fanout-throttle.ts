import { encodeServerFrame } from "@sobranie/protocol/frames";
import type { Clock, Timer } from "@sobranie/protocol/runtime/clock";
import type { LocalFanout } from "../ports/session-socket.js";
import { TokenBucket } from "../rate-limit.js";

export interface FanoutThrottleOptions {
  readonly clock: Clock;
  readonly fanout: LocalFanout;
  /** join/leave frames per channel per second sent at once (burst: the same number). */
  readonly perSec: number;
  /** join/leave deliveries (frames × local subscribers) per channel per second sent at once (burst: the same number). */
  readonly deliveriesPerSec: number;
  /** Past the rate, net changes are sent together this often. */
  readonly flushMs: number;
  /** The channel's member count now (cluster-wide), for `members` frames. */
  readonly count: (channel: string) => number;
  /** Called with the number of local recipients of each frame sent. */
  readonly sent: (op: "join" | "leave" | "members", channel: string, recipients: number) => void;
}

interface Pending {
  /** Membership before the first held change: a join then a leave of the same user nets to nothing. */
  readonly wasMember: boolean;
  op: "join" | "leave";
  info: unknown;
}

interface ChannelState {
  readonly frames: TokenBucket;
  readonly deliveries: TokenBucket;
  readonly pending: Map<string, Pending>;
  timer: Timer | undefined;
}

/**
 * join/leave fan-out per channel: each frame is serialized once and handed to
 * the native topic publish. Within `perSec` frames and `deliveriesPerSec`
 * deliveries (a frame costs one per local subscriber) frames go out at once;
 * past either the changes are held and coalesced per user (only the net
 * change survives) and sent every `flushMs`: itemized when at most the
 * channel's itemized limit changed — `perSec`, or fewer in a room so big that
 * `perSec` frames would exceed `deliveriesPerSec` — else as ONE `members`
 * frame with the count and how many joined and left.
 *
 * So each subscriber gets at most about `perSec` + 1 presence frames per
 * channel per flush, and a node spends at most about `deliveriesPerSec` (or
 * one frame per local subscriber) per channel per flush, whatever the churn:
 * a join storm of N members is not N frames per subscriber (N² in all), and
 * in a room with 5,000 local subscribers not 50 × 5,000 deliveries a second.
 */
export class FanoutThrottle {
  private readonly channels = new Map<string, ChannelState>();

  constructor(private readonly options: FanoutThrottleOptions) {}

  change(channel: string, op: "join" | "leave", user: string, info: unknown): void {
    const { clock } = this.options;
    let state = this.channels.get(channel);
    if (!state) {
      const { perSec, deliveriesPerSec } = this.options;
      state = {
        frames: new TokenBucket(perSec, perSec, clock.now()),
        deliveries: new TokenBucket(deliveriesPerSec, deliveriesPerSec, clock.now()),
        pending: new Map(),
        timer: undefined,
      };
      this.channels.set(channel, state);
    }
    const held = state.pending.get(user);
    if (held) {
      held.op = op;
      held.info = info;
      return;
    }
    if (state.pending.size === 0 && this.admitNow(state, channel)) return this.send(channel, op, user, info);
    state.pending.set(user, { wasMember: op === "leave", op, info });
    const current = state;
    state.timer ??= clock.setTimeout(() => this.flush(channel, current), this.options.flushMs);
  }

  /** Cancels held frames (stop). */
  close(): void {
    for (const state of this.channels.values()) state.timer?.cancel();
    this.channels.clear();
  }

  /** Drops idle per-channel state; called periodically. */
  sweep(): void {
    for (const [channel, state] of this.channels) if (state.pending.size === 0 && state.timer === undefined) this.channels.delete(channel);
  }

  private flush(channel: string, state: ChannelState): void {
    state.timer = undefined;
    const net = [...state.pending].filter(([, change]) => (change.op === "join") !== change.wasMember);
    state.pending.clear();
    if (net.length <= this.itemizedLimit(channel)) {
      for (const [user, change] of net) this.send(channel, change.op, user, change.info);
      return;
    }
    const joined = net.filter(([, change]) => change.op === "join").length;
    const text = encodeServerFrame({ op: "members", channel, count: this.options.count(channel), joined, left: net.length - joined });
    this.options.sent("members", channel, this.options.fanout.publish(channel, text));
  }

  /** One frame now, within both rates. */
  private admitNow(state: ChannelState, channel: string): boolean {
    const nowMs = this.options.clock.now();
    return state.frames.take(nowMs).ok && state.deliveries.take(nowMs, this.options.fanout.subscribers(channel)).ok;
  }

  /** Most users a flush sends itemized: `perSec`, fewer where that many frames would exceed `deliveriesPerSec` (never under one). */
  private itemizedLimit(channel: string): number {
    const subscribers = this.options.fanout.subscribers(channel);
    return Math.max(1, Math.min(this.options.perSec, Math.floor(this.options.deliveriesPerSec / Math.max(1, subscribers))));
  }

  private send(channel: string, op: "join" | "leave", user: string, info: unknown): void {
    const text = encodeServerFrame(info === undefined ? { op, channel, user } : { op, channel, user, info });
    this.options.sent(op, channel, this.options.fanout.publish(channel, text));
  }
}
