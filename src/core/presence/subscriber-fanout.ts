import { encodeServerFrame } from "@sobranie/protocol/frames";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { Metrics } from "../ports/metrics.js";
import type { LocalFanout } from "../ports/session-socket.js";
import { FanoutThrottle } from "./fanout-throttle.js";
import { lastSeenIso } from "./last-seen.js";
import { ONLINE_KEY } from "./online-key.js";
import { SubscriberCountFanout } from "./subscriber-count-fanout.js";
import { channelOfSubscribersKey, subscribersKey } from "./subscribers-key.js";

export interface SubscriberFanoutOptions {
  /** join/leave frames per channel per second before they are coalesced. */
  readonly perSec: number;
  /** join/leave deliveries (frames × local subscribers) per channel per second before changes are held. */
  readonly deliveriesPerSec: number;
  /** Past the rates, net changes are sent together this often. */
  readonly flushMs: number;
  /** A channel's subscriber count is shown at most this often. */
  readonly subscriberCountMs: number;
}

export interface SubscriberFanoutDeps {
  readonly clock: Clock;
  readonly fanout: LocalFanout;
  readonly metrics: Metrics;
  /** The key's member count now (cluster-wide). */
  readonly count: (key: string) => number;
  /** Shows a channel's counted subscribers (cluster-wide) to this node's sockets whose wire shows them. */
  readonly showSubscriberCount: (channel: string, count: number) => void;
}

/**
 * What this node's subscribers hear of cluster-level transitions: a user
 * going online or offline is a `status` frame on `status:<user>` at once; a
 * join or leave goes through the FanoutThrottle, which coalesces them past
 * the per-channel rates; a channel's counted subscribers coming or going
 * changes the count its subscribers are shown (SubscriberCountFanout). Every
 * status, join and leave frame sent is counted in `messagesSent`.
 */
export class SubscriberFanout {
  private readonly throttle: FanoutThrottle;
  private readonly counts: SubscriberCountFanout;

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
    this.counts = new SubscriberCountFanout({
      clock: deps.clock,
      intervalMs: options.subscriberCountMs,
      count: (channel) => deps.count(subscribersKey(channel)),
      show: deps.showSubscriberCount,
    });
  }

  /** (key, user) appeared in or vanished from the whole cluster at `atMs`. */
  transition(key: string, user: string, present: boolean, info: unknown, atMs: number): void {
    const counted = channelOfSubscribersKey(key);
    if (counted !== undefined) {
      this.counts.changed(counted);
    } else if (key === ONLINE_KEY) {
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
    this.counts.sweep();
  }

  /** Cancels held changes and counts: they are not sent. */
  close(): void {
    this.throttle.close();
    this.counts.close();
  }
}

function namespaceOf(channel: string): string {
  return channel.slice(0, Math.max(0, channel.indexOf(":")));
}
