import type { ChannelModel } from "amqplib";
import type { Writable } from "node:stream";

/** The amqplib 2.x internals this reaches into: the connection's socket and the muxer that writes every channel's frames to it. */
interface MuxInternals {
  connection?: { stream?: unknown; muxer?: { _readIncoming?: unknown } };
}

/**
 * Makes amqplib write each round of outgoing frames in one system call.
 *
 * Why: amqplib's muxer moves frames from the channels to the socket one
 * `socket.write` at a time, and an uncorked net.Socket makes each its own
 * syscall. Profiles of the gateway showed that `writeBuffer` as its largest
 * self-time entry (8–13 % of busy time in a connect storm, where every
 * connect publishes presence messages, and in fan-out, where acks go out).
 * Corking the socket for one muxer round sends the round as one `writev`;
 * frame order and content are unchanged.
 *
 * Reaches into amqplib internals (`connection.muxer._readIncoming`,
 * `connection.stream`); when they are not there (another amqplib version)
 * nothing is changed and `false` is returned.
 */
export function coalesceMuxWrites(model: ChannelModel): boolean {
  const connection = (model as unknown as MuxInternals).connection;
  const stream = connection?.stream as Partial<Writable> | undefined;
  const muxer = connection?.muxer;
  const readIncoming = muxer?._readIncoming;
  if (muxer === undefined || typeof readIncoming !== "function" || typeof stream?.cork !== "function" || typeof stream.uncork !== "function") return false;
  const cork = stream.cork.bind(stream);
  const uncork = stream.uncork.bind(stream);
  muxer._readIncoming = function corked(this: unknown, ...args: unknown[]): unknown {
    cork();
    try {
      return (readIncoming as (...a: unknown[]) => unknown).apply(this, args);
    } finally {
      uncork();
    }
  };
  return true;
}
