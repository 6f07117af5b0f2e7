import type { CloseCode } from "@sobranie/protocol/codes";

/**
 * One client connection as the core sees it, whatever the runtime
 * (uWebSockets.js, Bun.serve) or transport. Every method is a no-op once the
 * connection is closed: adapters guarantee that, so the core never touches a
 * dead native socket.
 */
export interface SessionSocket {
  /** Sends one serialized server frame. */
  send(text: string): void;
  /** Sends a close frame with `code`; the close callback follows. */
  close(code: CloseCode, reason: string): void;
  /** Joins the native pub/sub topic, so `LocalFanout.publish(topic, …)` reaches this socket. */
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  /** Bytes written but not yet taken by the kernel. */
  bufferedBytes(): number;
}

/**
 * Native topic fan-out of the runtime: one serialized frame reaches every
 * local socket subscribed to `topic` without a JavaScript loop over sockets.
 */
export interface LocalFanout {
  /** Returns how many local sockets the frame was handed to. */
  publish(topic: string, text: string): number;
  /** How many local sockets a frame published to `topic` now would reach. */
  subscribers(topic: string): number;
}
