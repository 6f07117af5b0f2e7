/**
 * Pusher apps (docs/pusher.md): the credentials a Pusher SDK connects and
 * signs with, and the options each app sets. Configured by `PUSHER_APPS`
 * (src/config/variables.ts validates it); this registry only looks them up.
 */

export interface PusherWebhook {
  readonly url: string;
  /** Which webhook events are sent to `url` (`channel_occupied`, …: the configuration lists the valid names and fills in all of them by default). */
  readonly events: readonly string[];
}

export interface PusherApp {
  /** The app id of REST paths (`/apps/{id}/events`). */
  readonly id: string;
  /** The public key: the WebSocket path `/app/{key}` and the `auth_key` of signed requests. */
  readonly key: string;
  /** Signs and verifies every HMAC; never logged, never sent. */
  readonly secret: string;
  /** A disabled app's connections are closed with 4003 (final). */
  readonly enabled: boolean;
  /** Whether `client-*` events from sockets are accepted on private and presence channels. */
  readonly clientEvents: boolean;
  /** Open connections of this app on one node beyond which new ones are refused (4100); undefined: no app limit. */
  readonly maxConnections: number | undefined;
  /**
   * Pusher's "authorized connections": a connection that has not signed in
   * (`pusher:signin`) this long after it opened is closed with 4009, which
   * SDKs take as final. Undefined: connections need not sign in.
   */
  readonly signinTimeoutMs: number | undefined;
  readonly webhooks: readonly PusherWebhook[];
}

/** The configured apps by key and by id; both are unique (the configuration refuses duplicates). */
export class PusherApps {
  private readonly byKeyMap = new Map<string, PusherApp>();
  private readonly byIdMap = new Map<string, PusherApp>();

  constructor(apps: readonly PusherApp[]) {
    for (const app of apps) {
      if (this.byKeyMap.has(app.key) || this.byIdMap.has(app.id)) throw new Error(`Pusher app ${app.id}: id or key used twice`);
      this.byKeyMap.set(app.key, app);
      this.byIdMap.set(app.id, app);
    }
  }

  get size(): number {
    return this.byIdMap.size;
  }

  byKey(key: string): PusherApp | undefined {
    return this.byKeyMap.get(key);
  }

  byId(id: string): PusherApp | undefined {
    return this.byIdMap.get(id);
  }

  all(): IterableIterator<PusherApp> {
    return this.byIdMap.values();
  }
}
