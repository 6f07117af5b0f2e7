import { CloseCode, UnsubscribeReason } from "@sobranie/protocol/codes";
import { DisconnectMode, type ControlCommand } from "@sobranie/protocol/control";
import type { TokenIdentity } from "./ports/authenticator.js";
import type { Clock, Timer } from "@sobranie/protocol/runtime/clock";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Metrics } from "./ports/metrics.js";
import type { Revocation, RevocationStore } from "./ports/revocation-store.js";
import { Revocations, type RevocationLimits } from "./revocations.js";
import type { Session } from "./session.js";

export interface AccessControlDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Where revocations outlive the process; absent on a node without a store (memory only). */
  readonly store: RevocationStore | undefined;
  readonly limits: RevocationLimits;
  /** The live sessions of a user on this node (WebSocket and SSE alike). */
  readonly sessionsOf: (userId: string) => Iterable<Session>;
}

/** Load attempts while the store is away, then maintenance: prune and retry unsaved entries. */
const LOAD_RETRY_MS = 2_000;
const MAINTENANCE_INTERVAL_MS = 60_000;
const REVOKED_REASON = "token revoked: reconnect with a new token";
const DISCONNECT_REASONS: Record<DisconnectMode, string> = {
  [DisconnectMode.Final]: "access revoked",
  [DisconnectMode.Reauthenticate]: "reauthenticate: reconnect with a new token",
};

/**
 * Applies control commands to this node's sessions and answers whether a
 * token is revoked (docs/protocol.md §11).
 *
 * Guarantees:
 * - A command acts on every matching session here at once (synchronously,
 *   as it is delivered); every node gets it through its own queue.
 * - `revoke` and `unsubscribe` entries are saved to the store by every node
 *   that receives them (an idempotent upsert); one that fails is retried
 *   until saved (bounded by `maxEntries`). A node loads the store before it
 *   reports ready, and again after every broker reconnect, so entries it
 *   missed while away reach it too (and close the sessions they cover).
 * - Entries expire when no token they match can still be valid, in memory
 *   and in the store.
 */
export class AccessControl {
  readonly revocations: Revocations;
  private loaded: boolean;
  private unsaved: Revocation[] = [];
  private loadTimer: Timer | undefined;
  private maintenance: Timer | undefined;
  private stopped = false;

  constructor(private readonly deps: AccessControlDeps) {
    this.revocations = new Revocations(deps.limits);
    this.loaded = deps.store === undefined;
  }

  /** True once the store's revocations are in memory (at once without a store): part of readiness. */
  isLoaded(): boolean {
    return this.loaded;
  }

  /** Loads the store's revocations (retrying until it answers) and starts the periodic prune. */
  start(): void {
    if (this.maintenance || this.stopped) return;
    this.maintenance = this.deps.clock.setInterval(() => void this.maintain(), MAINTENANCE_INTERVAL_MS);
    void this.load();
  }

  /** After a broker reconnect: commands published meanwhile never reached this node's queue; the store has them. */
  reload(): void {
    if (this.loaded) void this.load();
  }

  stop(): void {
    this.stopped = true;
    this.loadTimer?.cancel();
    this.maintenance?.cancel();
  }

  isRevoked(principal: TokenIdentity): boolean {
    return this.revocations.isRevoked(principal, this.deps.clock.now());
  }

  isChannelRevoked(principal: TokenIdentity, channel: string): boolean {
    return this.revocations.isChannelRevoked(principal, channel, this.deps.clock.now());
  }

  /**
   * Saves what the command revokes before it is published (the HTTP API), so
   * an accepted command is durable even if no node with a store receives it.
   * Rejects like the store does (StoreUnavailableError: retryable).
   */
  async persist(command: ControlCommand): Promise<void> {
    const { store, clock, limits } = this.deps;
    if (!store || command.command === "disconnect") return;
    const nowMs = clock.now();
    await store.saveRevocation(command.command === "revoke" ? Revocations.ofRevoke(command, nowMs, limits) : Revocations.ofUnsubscribe(command, nowMs, limits));
  }

  apply(command: ControlCommand): void {
    const nowMs = this.deps.clock.now();
    const { limits } = this.deps;
    switch (command.command) {
      case "disconnect": {
        const code = command.mode === DisconnectMode.Final ? CloseCode.Revoked : CloseCode.TokenExpired;
        for (const session of [...this.deps.sessionsOf(command.user)]) session.close(code, command.reason ?? DISCONNECT_REASONS[command.mode]);
        break;
      }
      case "unsubscribe":
        this.remember(Revocations.ofUnsubscribe(command, nowMs, limits));
        for (const session of this.deps.sessionsOf(command.user)) session.endSubscription(command.channel, UnsubscribeReason.Revoked);
        break;
      case "revoke":
        this.remember(Revocations.ofRevoke(command, nowMs, limits));
        break;
      default: {
        const unreachable: never = command;
        return unreachable;
      }
    }
    this.deps.metrics.controlCommandApplied(command.command);
  }

  /**
   * Into memory and the store; live sessions on a token it revokes are closed
   * with 4001, and subscriptions on a subscription token it revokes end with
   * `unsubscribed` reason `revoked`.
   */
  private remember(revocation: Revocation): void {
    this.hold(revocation);
    void this.save(revocation);
  }

  private hold(revocation: Revocation): void {
    const dropped = this.revocations.add(revocation, this.deps.clock.now());
    if (dropped > 0) this.deps.logger.warn({ dropped, max: this.deps.limits.maxEntries }, "revocations over their memory bound: the oldest were dropped");
    if (revocation.kind === "channel") return;
    for (const session of [...this.deps.sessionsOf(revocation.userId)]) {
      if (Revocations.matches(revocation, session.credentials)) session.close(CloseCode.TokenExpired, REVOKED_REASON);
      else session.endTokenSubscriptions((grant) => Revocations.matches(revocation, grant), UnsubscribeReason.Revoked);
    }
  }

  private async save(revocation: Revocation): Promise<void> {
    const { store } = this.deps;
    if (!store) return;
    try {
      await store.saveRevocation(revocation);
    } catch (error) {
      this.deps.logger.warn({ err: error, user: revocation.userId, kind: revocation.kind }, "revocation not saved to the store yet; retried");
      this.unsaved.push(revocation);
      if (this.unsaved.length > this.deps.limits.maxEntries) this.unsaved.shift();
    }
  }

  private async load(): Promise<void> {
    const { store, clock, logger } = this.deps;
    if (!store || this.stopped) return;
    this.loadTimer?.cancel();
    this.loadTimer = undefined;
    try {
      const entries = await store.loadRevocations(clock.now());
      for (const revocation of entries) this.hold(revocation);
      if (!this.loaded) logger.info({ revocations: entries.length }, "revocations loaded");
      this.loaded = true;
    } catch (error) {
      logger.warn({ err: error }, "revocations could not be loaded from the store; retrying");
      if (!this.stopped) this.loadTimer = clock.setTimeout(() => void this.load(), LOAD_RETRY_MS);
    }
  }

  private async maintain(): Promise<void> {
    const nowMs = this.deps.clock.now();
    this.revocations.prune(nowMs);
    const { store } = this.deps;
    if (!store) return;
    const retry = this.unsaved.filter((revocation) => revocation.expiresAtMs > nowMs);
    this.unsaved = [];
    for (const revocation of retry) await this.save(revocation);
    try {
      await store.pruneRevocations(nowMs);
    } catch (error) {
      this.deps.logger.warn({ err: error }, "expired revocations not pruned from the store; next time");
    }
  }
}
