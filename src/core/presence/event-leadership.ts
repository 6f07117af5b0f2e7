import { routingKey } from "@sobranie/protocol/channel";
import { ONLINE_KEY } from "./online-key.js";
import { lastSeenIso, type LastSeenTimes } from "./last-seen.js";
import { channelOfSubscribersKey } from "./subscribers-key.js";

/** Routing-key words must not carry AMQP separators or wildcards. */
const ROUTING_WORD = /^[A-Za-z0-9_-]{1,128}$/;
/** Events held during warm-up, at most. */
const MAX_HELD_EVENTS = 100_000;

/** One presence change for backends, to `sobranie.events` under the reserved `presence` prefix. */
export interface PresenceBackendEvent {
  readonly routingKey: string;
  readonly type: "online" | "offline" | "join" | "leave" | "occupied" | "vacated";
  /** Whose status or membership changed; undefined for a channel's occupancy. */
  readonly user: string | undefined;
  readonly data: Record<string, unknown>;
  readonly atMs: number;
}

export interface EventLeadershipDeps {
  readonly nodeId: string;
  /** The presence bus is connected. */
  readonly connected: () => boolean;
  /** Some known peer has an id below `node`. */
  readonly hasNodeBelow: (node: string) => boolean;
  /** Publishes to backends; failures are the sink's to log (presence never waits on them). */
  readonly publishEvent: (event: PresenceBackendEvent) => void;
  readonly lastSeen: LastSeenTimes;
}

/**
 * Backend events: exactly one node publishes them, the node with the lowest
 * id of those it knows, once settled, for every cluster-level transition it
 * observes. A lower node still warming up counts: it holds what it sees
 * meanwhile (bounded) and publishes it when it settles (deferring only to
 * synced peers let two cold-starting nodes both publish their held events).
 * Every node sees the same transitions per (channel, user) in the same order
 * (one holder set, changes from each node in order), so one publisher gives
 * one event per change, including for a dead node's members. Deciding on the
 * node where a change happened instead would lose the offline of a user whose
 * last two connections, on two nodes, close at the same moment (each node
 * sees the other still holding the user). The publisher also hands each
 * offline's time to the lastSeen store.
 */
export class EventLeadership {
  private synced = false;
  private everSynced = false;
  private held: PresenceBackendEvent[] = [];

  constructor(private readonly deps: EventLeadershipDeps) {}

  /** The view has settled since the bus last connected. */
  get isSynced(): boolean {
    return this.synced;
  }

  /** The view has settled at least once since this node started. */
  get wasEverSynced(): boolean {
    return this.everSynced;
  }

  isLeader(): boolean {
    return this.synced && this.deps.connected() && !this.deps.hasNodeBelow(this.deps.nodeId);
  }

  /** The bus is gone: events are held again until the view settles anew. */
  unsettle(): void {
    this.synced = false;
  }

  /** The view after (re)connecting has had its chance to fill. */
  settle(): void {
    this.synced = true;
    this.everSynced = true;
  }

  /** Held events go out if this node is the publisher, and are dropped otherwise. */
  releaseHeld(): void {
    const held = this.held;
    this.held = [];
    if (this.isLeader()) for (const event of held) this.emit(event);
  }

  /**
   * (key, user) appeared in or vanished from the whole cluster; `members`:
   * the channel's members cluster-wide after the change (1 on a channel's
   * first join, 0 on its last leave: what webhooks' channel_occupied and
   * channel_vacated are made from). Users that cannot be a routing-key word
   * raise no status event. Of counted subscribers (subscribers-key.ts) only
   * a channel's first (`occupied`) and its last (`vacated`) are events.
   */
  transition(key: string, user: string, present: boolean, info: unknown, atMs: number, members: number): void {
    let event: PresenceBackendEvent;
    const counted = channelOfSubscribersKey(key);
    if (counted !== undefined) {
      if (members !== (present ? 1 : 0)) return;
      const type = present ? "occupied" : "vacated";
      event = { routingKey: `presence.${routingKey(splitChannel(counted), type)}`, type, user: undefined, data: { channel: counted }, atMs };
    } else if (key === ONLINE_KEY) {
      if (!ROUTING_WORD.test(user)) return;
      const type = present ? "online" : "offline";
      event = { routingKey: `presence.status.${user}.${type}`, type, user, data: { user, online: present, lastSeen: lastSeenIso(atMs) }, atMs };
    } else {
      const type = present ? "join" : "leave";
      const data: Record<string, unknown> = { channel: key, user, members };
      if (info !== undefined) data.info = info;
      event = { routingKey: `presence.${routingKey(splitChannel(key), type)}`, type, user, data, atMs };
    }
    if (!this.synced) {
      if (this.held.length < MAX_HELD_EVENTS) this.held.push(event);
      return;
    }
    if (this.isLeader()) this.emit(event);
  }

  private emit(event: PresenceBackendEvent): void {
    this.deps.publishEvent(event);
    if (event.type === "offline" && event.user !== undefined) this.deps.lastSeen.persist(event.user, event.atMs);
  }
}

function splitChannel(channel: string): { namespace: string; id: string } {
  const colon = channel.indexOf(":");
  return { namespace: channel.slice(0, colon), id: channel.slice(colon + 1) };
}
