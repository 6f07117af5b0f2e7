import type { PresenceMessage } from "@sobranie/protocol/presence";
import type { PresenceBus, PresenceBusHandler } from "../ports/presence-bus.js";

/** A bus with no other node on it: what a gateway built without one (unit tests) runs presence on. */
export class LoneBus implements PresenceBus {
  private connected = false;

  async start(handler: PresenceBusHandler): Promise<void> {
    if (this.connected) return;
    this.connected = true;
    handler.connectionChanged(true);
  }

  publish(_message: PresenceMessage): void {}

  isConnected(): boolean {
    return this.connected;
  }

  async stop(): Promise<void> {
    this.connected = false;
  }
}
