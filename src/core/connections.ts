import type { CloseCode } from "@sobranie/protocol/codes";
import type { IngressLimits } from "./limits.js";
import { TokenBucket } from "./rate-limit.js";
import { Session } from "./session.js";
import type { SessionContext, UserState } from "./session-context.js";
import type { Principal } from "./ports/authenticator.js";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { UpgradeRejectReason } from "./ports/metrics.js";
import type { SessionSocket } from "./ports/session-socket.js";
import { NATIVE_WIRE, type SessionWire } from "./session-wire.js";

/**
 * This node's sessions, and the slots reserved for upgrades still in flight.
 *
 * Guarantees: a slot is reserved at upgrade time, so MAX_CONNECTIONS and the
 * per-user limit count upgrades not yet open; a slot is given back exactly
 * once (opened, or cancelled); a user's state (connection count, rate
 * bucket) lives while any of their connections or reserved slots does, and
 * is shared by all of them.
 */

/** A connection slot reserved at upgrade time, before the socket opens. */
export interface AdmissionTicket {
  readonly principal: Principal;
  /** Gives the slot back if the upgrade never completes. Idempotent. */
  cancel(): void;
}

export type Admission = { ok: true; ticket: AdmissionTicket } | { ok: false; reason: UpgradeRejectReason };

/** How often `waitUntilEmpty` looks. */
const EMPTY_POLL_MS = 50;

/** Settles once: either the socket opened (the slot becomes a session) or the upgrade was abandoned. */
class ReservedSlot implements AdmissionTicket {
  private settled = false;

  constructor(
    readonly principal: Principal,
    private readonly onSettle: (opened: boolean) => void,
  ) {}

  cancel(): void {
    this.settle(false);
  }

  settle(opened: boolean): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.onSettle(opened);
    return true;
  }
}

export interface ConnectionsDeps {
  readonly limits: IngressLimits;
  readonly clock: Clock;
  /** A new unique id for each session. */
  readonly newId: () => string;
  /** What every session is built with. */
  readonly ctx: SessionContext;
}

export class Connections {
  private readonly sessions = new Set<Session>();
  /** The same sessions by user, and by the user they were signed in as (signIn): what control commands act on. */
  private readonly sessionsByUser = new Map<string, Set<Session>>();
  private readonly users = new Map<string, UserState>();
  private reservedSlots = 0;

  constructor(private readonly deps: ConnectionsDeps) {}

  get size(): number {
    return this.sessions.size;
  }

  ofUser(userId: string): Iterable<Session> {
    return this.sessionsByUser.get(userId) ?? [];
  }

  /** Reserves a slot within MAX_CONNECTIONS (open sessions and reserved slots) and the user's connection limit. */
  reserve(principal: Principal): Admission {
    if (this.sessions.size + this.reservedSlots >= this.deps.limits.maxConnections) return { ok: false, reason: "capacity" };
    const user = this.userState(principal.userId);
    if (user.connections >= this.deps.limits.maxConnectionsPerUser) return { ok: false, reason: "too_many_connections" };
    user.connections += 1;
    this.reservedSlots += 1;
    const ticket = new ReservedSlot(principal, (opened) => {
      this.reservedSlots -= 1;
      if (!opened) this.releaseUser(principal.userId);
    });
    return { ok: true, ticket };
  }

  /** The upgrade completed: the session starts and gets `welcome` (written by `wire`). */
  open(ticket: AdmissionTicket, socket: SessionSocket, wire: SessionWire = NATIVE_WIRE): Session {
    if (!(ticket instanceof ReservedSlot) || !ticket.settle(true)) throw new Error("admission ticket used twice");
    const user = this.userState(ticket.principal.userId);
    const session = new Session({ id: this.deps.newId(), principal: ticket.principal, socket, wire, ctx: this.deps.ctx, user });
    this.sessions.add(session);
    this.addOfUser(session.userId, session);
    session.open();
    return session;
  }

  /**
   * The app signed `session` in as `userId` (Pusher's `pusher:signin`):
   * control commands for the user (docs/protocol.md §11) reach it from now
   * on, and it counts the user online (Session.signIn). Once per session;
   * the user's connection limit and rate bucket are not the session's.
   */
  signIn(session: Session, userId: string): void {
    if (!this.sessions.has(session) || session.signedInUser !== undefined) return;
    session.signIn(userId);
    if (userId !== session.userId) this.addOfUser(userId, session);
  }

  /** The transport reports a session's socket closed. */
  closed(session: Session): void {
    if (!this.sessions.delete(session)) return;
    this.removeOfUser(session.userId, session);
    const signedIn = session.signedInUser;
    if (signedIn !== undefined) this.removeOfUser(signedIn, session);
    session.released();
    this.releaseUser(session.userId);
  }

  /** Sends every session `reconnect`, each after its own random delay under `spreadMs`, so they do not stampede the other nodes. */
  askToReconnect(spreadMs: number, reason: string): void {
    for (const session of this.sessions) {
      session.send({ op: "reconnect", afterMs: Math.floor(Math.random() * spreadMs), reason });
    }
  }

  closeAll(code: CloseCode, reason: string): void {
    for (const session of [...this.sessions]) session.close(code, reason);
  }

  /** Heartbeat TTL and send-buffer size of every session; heartbeat TTL is judged only when `judgeSilence` (false in a late run, see LateTick). */
  inspect(nowMs: number, judgeSilence: boolean): void {
    for (const session of this.sessions) session.inspect(nowMs, judgeSilence);
  }

  /** Resolves once no session is left, or after `timeoutMs`. */
  waitUntilEmpty(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.sessions.size === 0) return resolve();
      const poll = this.deps.clock.setInterval(() => {
        if (this.sessions.size === 0) finish();
      }, EMPTY_POLL_MS);
      const deadline = this.deps.clock.setTimeout(() => finish(), timeoutMs);
      const finish = () => {
        poll.cancel();
        deadline.cancel();
        resolve();
      };
    });
  }

  private addOfUser(userId: string, session: Session): void {
    let ofUser = this.sessionsByUser.get(userId);
    if (!ofUser) this.sessionsByUser.set(userId, (ofUser = new Set()));
    ofUser.add(session);
  }

  private removeOfUser(userId: string, session: Session): void {
    const ofUser = this.sessionsByUser.get(userId);
    ofUser?.delete(session);
    if (ofUser?.size === 0) this.sessionsByUser.delete(userId);
  }

  private userState(userId: string): UserState {
    let user = this.users.get(userId);
    if (!user) {
      const { userRatePerSec, userBurst } = this.deps.limits;
      user = { connections: 0, bucket: new TokenBucket(userRatePerSec, userBurst, this.deps.clock.now()) };
      this.users.set(userId, user);
    }
    return user;
  }

  private releaseUser(userId: string): void {
    const user = this.users.get(userId);
    if (!user) return;
    user.connections -= 1;
    if (user.connections <= 0) this.users.delete(userId);
  }
}
