/**
 * What one channel has delivered, to drop repeats after a reconnect: by seq on
 * durable channels (a recovered event is never older than `lastSeq` twice),
 * and by id for everything, over a bounded window of recent ids.
 */
export class ChannelCursor {
  lastSeq: number | undefined;
  private readonly ids = new Set<string>();

  constructor(private readonly window = 1_000) {}

  /** True when the event is new (and records it); false for a repeat. */
  accept(id: string, seq: number | undefined): boolean {
    if (seq !== undefined && this.lastSeq !== undefined && seq <= this.lastSeq) return false;
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.window) {
      const oldest = this.ids.values().next().value;
      if (oldest !== undefined) this.ids.delete(oldest);
    }
    if (seq !== undefined) this.lastSeq = seq;
    return true;
  }
}
