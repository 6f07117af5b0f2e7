import type { Channel } from "../protocol/channel.js";
import type { ChannelBindings } from "./channel-bindings.js";
import type { IngressLimits } from "./limits.js";
import type { NamespacePolicy, NamespaceRegistry } from "./namespaces.js";
import type { Authenticator } from "./ports/authenticator.js";
import type { Clock } from "./ports/clock.js";
import type { Logger } from "./ports/logger.js";
import type { Metrics } from "./ports/metrics.js";
import type { TokenBucket } from "./rate-limit.js";

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
}

export interface ClientPublish {
  readonly channel: Channel;
  readonly policy: NamespacePolicy;
  readonly type: string;
  readonly data: unknown;
  readonly userId: string;
}

/** Per-user state on this node: connection count and the shared rate bucket. */
export interface UserState {
  connections: number;
  readonly bucket: TokenBucket;
}
