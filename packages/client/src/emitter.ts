import type { ClientEvents } from "./types.js";

/**
 * The client's typed events (`client.on`). Guarantee: a listener that throws
 * never reaches the caller of `emit`, so an app's bug cannot break the
 * connection, and the other listeners still run.
 */
export class Emitter {
  private readonly listeners = new Map<keyof ClientEvents, Set<(value: never) => void>>();

  /** Adds `listener`; the returned function removes it. */
  on<K extends keyof ClientEvents>(name: K, listener: (value: ClientEvents[K]) => void): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener as (value: never) => void);
    return () => set.delete(listener as (value: never) => void);
  }

  emit<K extends keyof ClientEvents>(name: K, value: ClientEvents[K]): void {
    for (const listener of this.listeners.get(name) ?? []) {
      try {
        (listener as (value: ClientEvents[K]) => void)(value);
      } catch {
        // A listener's bug must not break the connection.
      }
    }
  }
}
