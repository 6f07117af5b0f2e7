import type { BrokerLossOptions } from "./broker-loss.js";
import type { IngressLimits } from "./limits.js";
import type { NamespaceRegistry } from "./namespaces.js";
import type { RevocationLimits } from "./revocations.js";
import type { Authenticator } from "./ports/authenticator.js";
import type { Broker } from "./ports/broker.js";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { EventStore } from "./ports/event-store.js";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Metrics } from "./ports/metrics.js";
import type { PresenceBus } from "./ports/presence-bus.js";
import type { LocalFanout } from "./ports/session-socket.js";

/** What a Gateway is configured with (from Config, in src/app) and built on (the ports). */

export interface GatewayOptions {
  readonly nodeId: string;
  readonly heartbeatMs: number;
  readonly ttlMs: number;
  readonly limits: IngressLimits;
  /** How often every session is checked for heartbeat TTL and send-buffer size. */
  readonly inspectIntervalMs?: number;
  /** Most events one `subscribe` with `since` replays. */
  readonly recoveryLimit: number;
  /** Presence limits (docs/protocol.md §12); defaults: 1,000 listed members, 50 join/leave frames and 20,000 deliveries per channel per second. */
  readonly presence?: { readonly maxListedMembers: number; readonly fanoutPerSec: number; readonly fanoutDeliveriesPerSec: number };
  /**
   * A broker away longer than `graceMs` makes this node refuse new
   * connections and send its clients `reconnect` with `afterMs` spread over
   * `spreadMs`; defaults 3 s and 10 s.
   */
  readonly brokerLoss?: BrokerLossOptions;
  /** Revocation expiry and memory bound (docs/protocol.md §11); defaults: 30 days, 1,000,000 entries. */
  readonly revocations?: RevocationLimits;
  /** DEPLOYMENT_ID, written into every backend presence event's `data.deployment`; absent: no such field. */
  readonly deploymentId?: string | undefined;
}

export interface GatewayDeps {
  readonly broker: Broker;
  readonly fanout: LocalFanout;
  readonly authenticator: Authenticator;
  readonly namespaces: NamespaceRegistry;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** A new unique, time-ordered id (session ids, event ids). */
  readonly newId: () => string;
  readonly bindLingerMs: number;
  /** Namespaces bound once as a whole instead of per channel (BIND_WHOLE_NAMESPACES); default none. */
  readonly bindWholeNamespaces?: readonly string[] | undefined;
  /** Durable history for recovery and the inbox; absent on a node without a store. */
  readonly store?: EventStore | undefined;
  /** Presence between nodes; absent: this node is alone (no replication). */
  readonly presenceBus?: PresenceBus | undefined;
}
