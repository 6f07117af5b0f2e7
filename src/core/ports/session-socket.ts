import type { CloseCode } from "@sobranie/protocol/codes";

/**
 * One client connection as the core sees it, whatever the runtime
 * (uWebSockets.js, Bun.serve) or transport. Every method is a no-op once the
 * connection is closed (by `close` or by the client): adapters guarantee
 * that, so the core never touches a dead native socket; a closed socket has
 * left its topics and reports 0 `bufferedBytes`.
 *
 * test/contract/session-socket.contract.ts checks these guarantees, and
 * LocalFanout's, on every implementation over a real connection.
 */
export interface SessionSocket {
  /** Sends one serialized server frame. Frames reach the client in the order sent, and before any frame published to the socket after them. */
  send(text: string): void;
  /** Sends a close frame with `code`, behind every frame sent or published to the socket before it; the close callback follows, once. */
  close(code: CloseCode, reason: string): void;
  /** Joins the native pub/sub topic, so `LocalFanout.publish(topic, …)` reaches this socket. */
  subscribe(topic: string): void;
  /** Leaves the topic: later publishes skip this socket; a frame already published to it still arrives. */
  unsubscribe(topic: string): void;
  /** Bytes written but not yet taken by the kernel (0 or more). */
  bufferedBytes(): number;
}

/**
 * Where a channel's event came from, for the wire formats that show or honour
 * it (the Pusher protocol's `user_id` and socket exclusion); protocol v1
 * frames carry neither.
 */
export interface EventOrigin {
  /** The envelope's `user`: the client that published it. */
  readonly user?: string | undefined;
  /** The one socket the event must not reach (LiveDelivery.excludeSocket). */
  readonly excludeSocket?: string | undefined;
}

/**
 * Native topic fan-out of the runtime: one serialized frame reaches every
 * local socket subscribed to `topic` without a JavaScript loop over sockets.
 */
export interface LocalFanout {
  /** Returns how many local sockets the frame was handed to; each of them gets it. `origin`: of an event frame, where known. */
  publish(topic: string, text: string, origin?: EventOrigin): number;
  /** How many local sockets a frame published to `topic` now would reach. */
  subscribers(topic: string): number;
}
