import { encodeServerFrame } from "../../protocol/frames.js";
import type { Clock, Timer } from "../ports/clock.js";
import type { LocalFanout } from "../ports/session-socket.js";
import { TokenBucket } from "../rate-limit.js";

export interface FanoutThrottleOptions {
  readonly clock: Clock;
  readonly fanout: LocalFanout;
  /** join/leave frames per channel per second sent at once (burst: the same number). */
  readonly perSec: number;
  /** Past the rate, net changes are sent together this often. */
  readonly flushMs: number;
  /** Called with the number of local recipients of each frame sent. */
  readonly sent: (op: "join" | "leave", channel: string, recipients: number) => void;
}

interface Pending {
  /** Membership before the first held change: a join then a leave of the same user nets to nothing. */
  readonly wasMember: boolean;
  op: "join" | "leave";
  info: unknown;
}

interface ChannelState {
  readonly bucket: TokenBucket;
  readonly pending: Map<string, Pending>;
  timer: Timer | undefined;
}

/**
 * join/leave fan-out per channel: each frame is serialized once and handed to
 * the native topic publish. Within `perSec` frames go out at once; past it the
 * changes are held and coalesced per user (only the net change survives) and
 * sent every `flushMs`, so a 10,000-member room with churn costs each client at
 * most one frame per changed user per flush instead of one per change.
 */
export class FanoutThrottle {
  private readonly channels = new Map<string, ChannelState>();

  constructor(private readonly options: FanoutThrottleOptions) {}

  change(channel: string, op: "join" | "leave", user: string, info: unknown): void {
    const { clock } = this.options;
    let state = this.channels.get(channel);
    if (!state) {
      state = { bucket: new TokenBucket(this.options.perSec, this.options.perSec, clock.now()), pending: new Map(), timer: undefined };
      this.channels.set(channel, state);
    }
    const held = state.pending.get(user);
    if (held) {
      held.op = op;
      held.info = info;
      return;
    }
    if (state.pending.size === 0 && state.bucket.take(clock.now()).ok) return this.send(channel, op, user, info);
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
    const pending = [...state.pending];
    state.pending.clear();
    for (const [user, change] of pending) {
      const isMember = change.op === "join";
      if (isMember !== change.wasMember) this.send(channel, change.op, user, change.info);
    }
  }

  private send(channel: string, op: "join" | "leave", user: string, info: unknown): void {
    const text = encodeServerFrame(info === undefined ? { op, channel, user } : { op, channel, user, info });
    this.options.sent(op, channel, this.options.fanout.publish(channel, text));
  }
}
