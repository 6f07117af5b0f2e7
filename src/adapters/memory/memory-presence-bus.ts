import type { PresenceBus, PresenceBusHandler } from "../../core/ports/presence-bus.js";
import type { PresenceMessage } from "@sobranie/protocol/presence";

/**
 * The exchange that in-process buses share: a single-node gateway uses one
 * bus on its own network; unit tests connect several "nodes" to one network.
 */
export class MemoryPresenceNetwork {
  private readonly buses = new Set<MemoryPresenceBus>();
  /** Test hook: return false to lose a message on its way to one bus. */
  filter: ((message: PresenceMessage, to: MemoryPresenceBus) => boolean) | undefined;

  join(bus: MemoryPresenceBus): void {
    this.buses.add(bus);
  }

  leave(bus: MemoryPresenceBus): void {
    this.buses.delete(bus);
  }

  /** Delivered asynchronously, to every connected bus (the sender too), in publish order. */
  route(message: PresenceMessage): void {
    // A copy through JSON, like the wire: no receiver shares objects with the sender.
    const text = JSON.stringify(message);
    for (const bus of this.buses) if (!this.filter || this.filter(message, bus)) bus.enqueue(text);
  }
}

/** PresenceBus in the process; `disconnect()`/`reconnect()` stand in for a lost broker connection in tests. */
export class MemoryPresenceBus implements PresenceBus {
  private handler: PresenceBusHandler | undefined;
  private connected = false;
  private stopped = false;
  private readonly inbox: string[] = [];
  private draining = false;

  constructor(private readonly network: MemoryPresenceNetwork = new MemoryPresenceNetwork()) {}

  async start(handler: PresenceBusHandler): Promise<void> {
    if (this.handler || this.stopped) return;
    this.handler = handler;
    this.reconnect();
  }

  publish(message: PresenceMessage): void {
    if (this.connected) this.network.route(message);
  }

  isConnected(): boolean {
    return this.connected;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.disconnect();
  }

  /** Test hook: the connection is gone (nothing is received, publishes are dropped). */
  disconnect(): void {
    if (!this.connected) return;
    this.connected = false;
    this.network.leave(this);
    this.inbox.length = 0;
    this.handler?.connectionChanged(false);
  }

  /** Test hook: connected again. */
  reconnect(): void {
    if (this.connected || this.stopped || !this.handler) return;
    this.connected = true;
    this.network.join(this);
    this.handler.connectionChanged(true);
  }

  /** @internal Called by the network. */
  enqueue(text: string): void {
    this.inbox.push(text);
    if (this.draining) return;
    this.draining = true;
    queueMicrotask(() => this.drain());
  }

  private drain(): void {
    this.draining = false;
    const handler = this.handler;
    while (this.inbox.length > 0) {
      const text = this.inbox.shift() as string;
      if (this.connected && handler) handler.received(JSON.parse(text) as PresenceMessage);
    }
  }
}
