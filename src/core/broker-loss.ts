import type { Clock, Timer } from "@sobranie/protocol/runtime/clock";
import type { Logger } from "@sobranie/protocol/runtime/logger";

/**
 * What this node does when its broker stays away: past `graceMs` it refuses
 * new connections (503) and asks every client to reconnect, each after a
 * random delay within `spreadMs`, so the load balancer moves them to nodes
 * that have a broker. Clients that stay keep their subscriptions and are
 * repaired when the broker comes back. A draining node moves nobody (the
 * drain already does).
 *
 * Guarantee: at most one grace timer runs; the broker's return cancels it
 * and accepts connections again at once.
 *
 * "The broker" here is the consuming side alone (`Broker.isReady`, reported
 * through `readinessChanged`): that is what clients lose deliveries by. A
 * node whose publish connection alone is away still delivers to its clients;
 * their publishes fail with the retryable `unavailable` meanwhile and
 * `/readyz` (`brokerPublish`) keeps new traffic off the node. Asking every
 * client to move would turn a short publish-side reconnect, which a client's
 * retry already covers, into a reconnect wave across the fleet.
 */

export interface BrokerLossOptions {
  readonly graceMs: number;
  readonly spreadMs: number;
}

export interface BrokerLossDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly options: BrokerLossOptions;
  isDraining(): boolean;
  /** Sessions on this node now (for the log line). */
  sessionCount(): number;
  /** Sends every session `reconnect`, spread over `spreadMs`, with this reason. */
  askToReconnect(spreadMs: number, reason: string): void;
}

export const DEFAULT_BROKER_LOSS: BrokerLossOptions = { graceMs: 3_000, spreadMs: 10_000 };
/** `reason` of the `reconnect` frame sent when this node lost its broker. */
const BROKER_LOST_REASON = "broker_unavailable";

export class BrokerLoss {
  private ready = false;
  /** The broker has been away past the grace: new connections are refused and clients were asked to move. */
  private lost = false;
  private timer: Timer | undefined;

  constructor(private readonly deps: BrokerLossDeps) {}

  /** Broker connected with bindings restored (the consuming side; see the class comment). */
  isReady(): boolean {
    return this.ready;
  }

  /** Away past the grace: new connections are refused. */
  isLost(): boolean {
    return this.lost;
  }

  /** A node that reaches no broker at all moves nobody's clients yet, but stops taking new ones after the grace. */
  start(): void {
    if (!this.ready) this.armGrace();
  }

  down(): void {
    this.ready = false;
    this.armGrace();
  }

  /** Returns whether the broker was ready before (a readiness report repeated). */
  up(): boolean {
    const wasReady = this.ready;
    this.ready = true;
    this.timer?.cancel();
    this.timer = undefined;
    if (this.lost) this.deps.logger.info({}, "broker back: accepting connections again");
    this.lost = false;
    return wasReady;
  }

  stop(): void {
    this.timer?.cancel();
  }

  private armGrace(): void {
    this.timer ??= this.deps.clock.setTimeout(() => this.moveClientsAway(), this.deps.options.graceMs);
  }

  private moveClientsAway(): void {
    this.timer = undefined;
    if (this.ready || this.deps.isDraining()) return;
    this.lost = true;
    const { spreadMs } = this.deps.options;
    this.deps.logger.warn({ sessions: this.deps.sessionCount(), spreadMs }, "broker unavailable past the grace: refusing connections and moving clients to other nodes");
    this.deps.askToReconnect(spreadMs, BROKER_LOST_REASON);
  }
}
