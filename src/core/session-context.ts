import type { Channel } from "@sobranie/protocol/channel";
import type { ChannelBindings } from "./channel-bindings.js";
import type { IngressLimits } from "./limits.js";
import type { NamespacePolicy, NamespaceRegistry } from "./namespaces.js";
import type { Authenticator, TokenIdentity } from "./ports/authenticator.js";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { EventStore } from "./ports/event-store.js";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Metrics } from "./ports/metrics.js";
import type { TokenBucket } from "./rate-limit.js";
import type { PresenceHandle } from "./presence/index.js";

/** What every session of a node shares; built once by the Gateway. */
export interface SessionContext {
  readonly nodeId: string;
  readonly heartbeatMs: number;
  readonly ttlMs: number;
  readonly limits: IngressLimits;
  readonly namespaces: NamespaceRegistry;
  readonly bindings: ChannelBindings;
  readonly authenticator: Authenticator;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Publishes a client event to the broker; resolves with its id once confirmed. */
  publishFromClient(request: ClientPublish): Promise<string>;
  /** Durable history and the inbox; undefined on a node without a store (no recovery there). */
  readonly store: EventStore | undefined;
  /** Most events one `subscribe` with `since` replays; past it `recovered` is false. */
  readonly recoveryLimit: number;
  /** Live events of `channel` also go to `sink` while a session recovers it (see SessionRecoveries.recover). */
  beginRecovery(channel: string, sink: RecoverySink): void;
  endRecovery(channel: string, sink: RecoverySink): void;
  /** Channel presence and user status, cluster-wide. */
  readonly presence: PresenceHandle;
  /** Tells every connection of the user, on every node, where their read mark now is. */
  announceRead(userId: string, upTo: number): void;
  /** Revocations (docs/protocol.md §11): a refreshed token is checked, and so is each subscribe and each subscription token. */
  readonly access: {
    isRevoked(token: TokenIdentity): boolean;
    isChannelRevoked(token: TokenIdentity, channel: string): boolean;
  };
}

/** Receives live event frames (already serialized) with their seq, while a recovery reads history. */
export type RecoverySink = (seq: number | undefined, text: string) => void;

export interface ClientPublish {
  readonly channel: Channel;
  readonly policy: NamespacePolicy;
  readonly type: string;
  readonly data: unknown;
  /** The envelope's `user`: the connection's user, or the member it is subscribed as (SignedGrant). */
  readonly userId: string;
  /** The publishing connection's id on its wire (SessionWire.excludeId): the event does not come back to it. */
  readonly excludeSocket?: string | undefined;
}

/** Per-user state on this node: connection count and the shared rate bucket. */
export interface UserState {
  connections: number;
  readonly bucket: TokenBucket;
}
