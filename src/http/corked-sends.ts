/** A socket with frames waiting in a CorkedSends. */
export interface HasWaitingFrames {
  /** Writes the waiting frames (corked: one system call); called once per turn it has any. */
  writeWaiting(): void;
}

/**
 * Holds frames sent directly to WebSockets until the end of the event-loop
 * turn, then writes each socket's frames corked: one send() system call per
 * socket per turn, however many frames it got. The runtime corks by itself
 * only inside its own handlers; a send from anywhere else — the `ok` of a publish
 * when the broker confirms it, a recovery replay after the store answered —
 * was a system call per frame, and on loopback the system call costs more
 * than the frame (a client with 4 publishes in flight got 4 writes).
 *
 * Order guarantees: a socket's frames leave in the order they were sent, and
 * `flush()` runs before every topic publish (EdgeFanout), so a frame sent
 * before an event was published is never overtaken by it.
 */
export class CorkedSends {
  private readonly waiting = new Set<HasWaitingFrames>();
  private scheduled = false;

  /** `socket` has its first waiting frame of this turn. */
  add(socket: HasWaitingFrames): void {
    this.waiting.add(socket);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  /** Writes every waiting frame now. */
  readonly flush = (): void => {
    this.scheduled = false;
    if (this.waiting.size === 0) return;
    // A socket added while writing (a send from inside a write) waits for the next flush.
    const sockets = [...this.waiting];
    this.waiting.clear();
    for (const socket of sockets) socket.writeWaiting();
  };
}
