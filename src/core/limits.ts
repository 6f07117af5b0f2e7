/** Ingress limits of one node (docs/protocol.md §5); all come from configuration. */
export interface IngressLimits {
  readonly maxFrameBytes: number;
  readonly connectionRatePerSec: number;
  readonly connectionBurst: number;
  readonly userRatePerSec: number;
  readonly userBurst: number;
  /** Continuous time over a rate limit after which the connection is closed 4029. */
  readonly abuseCloseMs: number;
  readonly maxSubscriptions: number;
  readonly maxConnectionsPerUser: number;
  /** Node capacity: upgrades past it get HTTP 503. */
  readonly maxConnections: number;
  /** A socket whose unsent bytes pass this is closed 4013. */
  readonly sendBufferBytes: number;
}
