import type { Emitter } from "./emitter.js";
import type { Subscriptions } from "./subscriptions.js";
import type { IncomingFrame } from "./transports.js";

/** The server frames meant for the app (not for the connection's own upkeep). */
export type AppFrame = Extract<IncomingFrame, { op: "event" | "join" | "leave" | "members" | "status" | "read" | "gap" | "unsubscribed" }>;

/**
 * Hands an app frame to the app: events to their channel's handlers (once
 * each, see Subscriptions.deliver), everything else as a `client.on` event.
 * A gap of a channel no longer subscribed is not passed on.
 */
export function deliverAppFrame(frame: AppFrame, subscriptions: Subscriptions, events: Emitter): void {
  switch (frame.op) {
    case "event":
      return subscriptions.deliver(frame);
    case "join":
      return events.emit(frame.op, { channel: frame.channel, user: frame.user, info: frame.info });
    case "leave":
      return events.emit("leave", { channel: frame.channel, user: frame.user });
    case "members":
      return events.emit("members", { channel: frame.channel, count: frame.count, joined: frame.joined, left: frame.left });
    case "status":
      return events.emit("status", { user: frame.user, online: frame.online, ...(frame.lastSeen === undefined ? {} : { lastSeen: frame.lastSeen }) });
    case "read":
      return events.emit("read", { channel: frame.channel, upTo: frame.upTo });
    case "gap":
      if (subscriptions.has(frame.channel)) events.emit("gap", { channel: frame.channel, reason: frame.reason });
      return;
    case "unsubscribed":
      return subscriptions.droppedByServer(frame.channel, frame.reason);
    default: {
      const unreachable: never = frame;
      return unreachable;
    }
  }
}
