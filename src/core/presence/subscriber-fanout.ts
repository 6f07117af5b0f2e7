import { encodeServerFrame } from "@sobranie/protocol/frames";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { Metrics } from "../ports/metrics.js";
import type { LocalFanout } from "../ports/session-socket.js";
import { FanoutThrottle } from "./fanout-throttle.js";
import { lastSeenIso } from "./last-seen.js";
import { ONLINE_KEY } from "./online-key.js";

export interface SubscriberFanoutOptions {
  /** join/leave frames per channel per second before they are coalesced. */
  readonly perSec: number;
  /** join/leave deliveries (frames × local subscribers) per channel per second before changes are held. */
  readonly deliveriesPerSec: number;
  /** Past the rates, net changes are sent together this often. */
  readonly flushMs: number;
}

export interface SubscriberFanoutDeps {
  readonly clock: Clock;
  readonly fanout: LocalFanout;
  readonly metrics: Metrics;
  /** The channel's member count now (cluster-wide). */
  readonly count: (channel: string) => number;
}

/**
 * What this node's subscribers hear of cluster-level transitions: a user
 * going online or offline is a `status` frame on `status:<user>` at once; a
 * join or leave goes through the FanoutThrottle, which coalesces them past
 * the per-channel rates. Every frame sent is counted in `messagesSent`.
 */
export class SubscriberFanout {
  private readonly throttle: FanoutThrottle;

  constructor(
    options: SubscriberFanoutOptions,
    private readonly deps: SubscriberFanoutDeps,
  ) {
    this.throttle = new FanoutThrottle({
      ...options,
      clock: deps.clock,
      fanout: deps.fanout,
      count: deps.count,
      sent: (op, channel, recipients) => deps.metrics.messagesSent(op, namespaceOf(channel), recipients, undefined),
    });
  }

  /** (key, user) appeared in or vanished from the whole cluster at `atMs`. */
  transition(key: string, user: string, present: boolean, info: unknown, atMs: number): void {
    if (key === ONLINE_KEY) {
      const text = encodeServerFrame({ op: "status", user, online: present, lastSeen: lastSeenIso(atMs) });
      const recipients = this.deps.fanout.publish(`status:${user}`, text);
      this.deps.metrics.messagesSent("status", "status", recipients, undefined);
    } else {
      this.throttle.change(key, present ? "join" : "leave", user, info);
    }
  }

  /** Drops idle per-channel throttle state; called periodically. */
  sweep(): void {
    this.throttle.sweep();
  }

  /** Cancels held changes: they are not sent. */
  close(): void {
    this.throttle.close();
  }
}

function namespaceOf(channel: string): string {
  return channel.slice(0, Math.max(0, channel.indexOf(":")));
}
