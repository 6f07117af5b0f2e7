import type { Metrics } from "../../core/ports/metrics.js";
import type { PresenceHandle } from "../../core/presence/index.js";
import type { Session } from "../../core/session.js";
import type { SessionWire } from "../../core/session-wire.js";
import type { SignedGrant } from "../../core/signed-grant.js";
import { EVENT_TYPE_PATTERN, EVENT_TYPE_RULE } from "@sobranie/protocol/channel";
import { ErrorCode } from "@sobranie/protocol/codes";
import { validateClientFrame, type ServerFrame } from "@sobranie/protocol/frames";
import type { PusherApp } from "./apps.js";
import { isPusherChannelRefusal, SERVER_TO_USER_PREFIX, showsSubscriptionCount, type PusherChannel, type PusherChannelNames } from "./channel-names.js";
import { channelAuthString, userAuthString, verifyAuthToken } from "./signatures.js";
import { readChannelData, readUserData } from "./signed-data.js";
import { pusherErrorCode, SUBSCRIPTION_ERROR_STATUS } from "./socket-codes.js";
import type { PusherCacheSource } from "./socket-cache.js";
import {
  cacheMiss,
  channelEvent,
  connectionEstablished,
  PUSHER_PONG,
  pusherError,
  readPusherFrame,
  signinSuccess,
  subscriptionError,
  subscriptionCount,
  subscriptionSucceeded,
  watchlistEvents,
  type PusherClientFrame,
} from "./socket-frames.js";
import type { PusherWebhookEntry } from "./socket-webhooks.js";


export interface PusherConnectionDeps {
  readonly app: PusherApp;
  readonly socketId: string;
  readonly activityTimeoutSec: number;
  readonly channelNames: PusherChannelNames;
  /** The node's presence: the member list a presence subscription starts with. */
  readonly presence: PresenceHandle;
  readonly metrics: Metrics;
  /** Where `cache-` channels' last events come from. */
  readonly cache: PusherCacheSource;
  /** Where the webhook events this connection sees (client events, cache misses) go. */
  readonly webhooks: PusherWebhookEntry;
  /** The app signed this connection in as `userId`: the core makes it the user's for control commands and status (Gateway.signIn). */
  signIn(userId: string): void;
  /** The signed-in connection watches these users: their online/offline changes come to it as watchlist events (PusherSessionSocket.watch). */
  watch(users: readonly string[]): void;
  /** Writes a frame on the connection at once. */
  send(text: string): void;
  /** The core asked this connection to reconnect elsewhere after `afterMs` (drain, broker loss): close it then with 4200. */
  reconnectAfter(afterMs: number): void;
}

/** What becomes of the core's answer to one request made for a Pusher frame; undefined: nothing is sent. */
interface PendingReply {
  ok(): string | undefined;
  error(frame: Extract<ServerFrame, { op: "error" }>): string | undefined;
}

/**
 * One Pusher connection translated onto its core Session: Pusher frames in
 * become session requests (a subscribe the app signed carries a SignedGrant),
 * and the session's frames out are written as Pusher frames (this is the
 * session's SessionWire). Each request gets a `ref` of its own, so the
 * session's `ok`/`error` is matched to the subscription it answers.
 *
 * A `cache-` channel (of a durable namespace: PusherCacheSource) is sent,
 * after its `subscription_succeeded`, the channel's last stored event, or
 * `pusher:cache_miss` (and the `cache_miss` webhook) when it has none. The
 * store is read once the subscription stands, so no event falls between the
 * replay and the live ones; an event published in that same moment may come
 * both live and as the replay, or live just before the replay.
 *
 * A connection subscribes a channel under one Pusher name at a time: a
 * second name for the same channel (`presence-room.7` and
 * `presence-cache-room.7`) is refused.
 *
 * Client events (`client-*`) are the session's client publishes, routed by
 * the namespace's publish policy (`backend`: to RabbitMQ for backends;
 * `broadcast`: to the channel's subscribers), never back to this socket
 * (its socket id is every publish's excluded socket). They are taken only
 * from apps with `clientEvents`, on private and presence channels this
 * connection is subscribed to; encrypted channels relay only what the
 * server published. Each client event the session took is reported as a
 * `client_event` webhook to the app's webhooks that want it.
 *
 * `pusher:signin` (the app's signature of `<socket_id>::user::<user_data>`)
 * makes the connection its user's: for `#server-to-user-<id>`, the channel
 * `user:<id>`, and in the core (Gateway.signIn) for control commands and
 * status; the session's own user id, its rate bucket and grants stay the
 * socket's. Its `user_data.watchlist` (at most 100 user ids) is watched:
 * right after `signin_success` one `online` watchlist event lists the
 * watched users online then (if any), and each later change of theirs,
 * cluster-wide, comes as `online` or `offline`. The watch stands before the
 * statuses are read, so no change is missed; one made in that same moment
 * may arrive just before the initial list.
 */
export class PusherConnection implements SessionWire {
  readonly countsUserOnline = false;
  /** Pusher shows subscription counts and occupancy: this connection's subscriptions are counted cluster-wide. */
  readonly countsSubscribers = true;
  readonly excludeId: string;
  private session: Session | undefined;
  private nextRef = 1;
  private readonly pending = new Map<number, PendingReply>();
  /** Subscriptions by Pusher name, from the subscribe until the unsubscribe. */
  private readonly byName = new Map<string, PusherChannel>();
  /** The same by channel. */
  private readonly byChannel = new Map<string, PusherChannel>();
  /** Pusher names whose subscription succeeded (client events are taken on these only). */
  private readonly subscribed = new Set<string>();
  /** The member's user id of each presence subscription, by Pusher name. */
  private readonly memberOf = new Map<string, string>();
  /** The user id of a successful `pusher:signin`. */
  private signedInAs: string | undefined;

  constructor(private readonly deps: PusherConnectionDeps) {
    this.excludeId = deps.socketId;
  }

  /** The session this connection speaks to; set once the gateway opened it. */
  attach(session: Session): void {
    this.session = session;
  }

  /** The Pusher name `channel` is subscribed (or being subscribed) with. */
  pusherChannelOf(channel: string): PusherChannel | undefined {
    return this.byChannel.get(channel);
  }

  /** A text frame from the client, held to the session's frame-size and rate limits. */
  receive(text: string, byteLength: number): void {
    this.session?.receiveTranslated(byteLength, () => this.handle(text));
  }

  encode(frame: ServerFrame): string | undefined {
    switch (frame.op) {
      case "welcome":
        return connectionEstablished(this.deps.socketId, this.deps.activityTimeoutSec);
      case "ok":
      case "error": {
        const reply = frame.ref === undefined ? undefined : this.pending.get(frame.ref);
        if (reply && frame.ref !== undefined) {
          this.pending.delete(frame.ref);
          return frame.op === "ok" ? reply.ok() : reply.error(frame);
        }
        // Refusals of a frame before it became a request: its size, the rate limits, a binary frame.
        return frame.op === "error" ? pusherError(pusherErrorCode(frame.code), frame.message) : undefined;
      }
      case "pong":
        return PUSHER_PONG;
      case "reconnect":
        this.deps.reconnectAfter(frame.afterMs);
        return undefined;
      case "unsubscribed": {
        const pusher = this.byChannel.get(frame.channel);
        if (!pusher) return undefined;
        this.forget(pusher);
        return pusherError(null, `the server ended the subscription to ${pusher.pusherName} (${frame.reason}); do not subscribe again`);
      }
      default:
        return undefined;
    }
  }

  private handle(text: string): void {
    const read = readPusherFrame(text);
    if (!read.ok) return this.refuse(read.message);
    const frame: PusherClientFrame = read.frame;
    switch (frame.event) {
      case "pusher:ping":
        return this.session?.request({ op: "ping" });
      case "pusher:pong":
        // Heard already: the frame itself is the heartbeat.
        return;
      case "pusher:subscribe":
        return this.subscribe(frame.data);
      case "pusher:unsubscribe":
        return this.unsubscribe(frame.channel);
      case "pusher:signin":
        return this.signin(frame.data.auth, frame.data.user_data);
      case "client":
        return this.clientEvent(frame.name, frame.channel, frame.data);
    }
  }

  private signin(auth: string, userData: string): void {
    if (this.signedInAs !== undefined) return this.refuse(`pusher:signin: this connection is signed in as ${this.signedInAs} already`);
    if (!verifyAuthToken(this.deps.app, userAuthString(this.deps.socketId, userData), auth)) {
      return this.refuse("pusher:signin: the signature in \"auth\" is not the app's for this socket_id and user_data");
    }
    const user = readUserData(userData);
    if (typeof user === "string") return this.refuse(`pusher:signin: ${user}`);
    this.signedInAs = user.id;
    this.deps.signIn(user.id);
    this.deps.send(signinSuccess(userData));
    if (user.watchlist.length > 0) this.sendWatchedOnline(user.watchlist);
  }

  /** Watches `users`, then sends the `online` watchlist event of those online now (none: nothing is sent). */
  private sendWatchedOnline(users: readonly string[]): void {
    this.deps.watch(users);
    this.deps.presence.statuses(users).then(
      (statuses) => {
        const online = statuses.filter((status) => status.online).map((status) => status.user);
        if (online.length > 0) this.deps.send(watchlistEvents("online", online));
      },
      () => this.deps.send(pusherError(null, "pusher:signin: who of the watchlist is online now could not be read; their changes from now on still come")),
    );
  }

  /** `#server-to-user-<id>` as the channel `user:<id>`, or why this connection may not have it. */
  private serverToUser(name: string): PusherChannel | string {
    const id = name.slice(SERVER_TO_USER_PREFIX.length);
    if (this.signedInAs === undefined) return `${name}: sign in (pusher:signin) first`;
    if (id !== this.signedInAs) return `${name}: only the signed-in user's own channel, ${SERVER_TO_USER_PREFIX}${this.signedInAs}`;
    return { pusherName: name, channel: { namespace: "user", id, name: `user:${id}` }, kind: "private", cache: false, seqInData: false };
  }

  private clientEvent(event: string, name: string, data: unknown): void {
    const session = this.session;
    if (!session) return;
    // Named in refusals clipped: both are the client's text, of any length.
    const shown = clip(event);
    if (!this.deps.app.clientEvents) return this.refuse(`${shown}: client events are turned off for this app`);
    const pusher = this.byName.get(name);
    if (!pusher || !this.subscribed.has(name)) return this.refuse(`${shown}: subscribe to ${clip(name)} before triggering client events on it`);
    if (pusher.kind === "public") return this.refuse(`${shown}: client events are taken on private and presence channels only`);
    if (pusher.kind === "encrypted") return this.refuse(`${shown}: client events are not taken on encrypted channels`);
    if (!EVENT_TYPE_PATTERN.test(event)) return this.refuse(`${shown}: ${EVENT_TYPE_RULE}`);
    const ref = this.nextRef++;
    // The event's data is held to the limits of a native publish (depth, numbers): validated as one.
    const validated = validateClientFrame({ json: { op: "publish", ref, channel: pusher.channel.name, type: event, data }, ref });
    if (!validated.ok) return this.refuse(`${shown}: ${validated.message}`);
    this.pending.set(ref, {
      ok: () => {
        this.clientEventWebhook(name, event, data);
        return undefined;
      },
      error: (refusal) => pusherError(pusherErrorCode(refusal.code), `${event} on ${name}: ${refusal.message}`),
    });
    session.request(validated.frame);
  }

  /** The `client_event` webhook of a client event the session took: `data` as text, as Pusher sends it, and the member on presence channels. */
  private clientEventWebhook(name: string, event: string, data: unknown): void {
    const userId = this.memberOf.get(name);
    this.deps.webhooks.send(this.deps.app, {
      name: "client_event",
      channel: name,
      event,
      data: typeof data === "string" ? data : JSON.stringify(data ?? null),
      socket_id: this.deps.socketId,
      ...(userId === undefined ? {} : { user_id: userId }),
    });
  }

  private subscribe(data: { channel: string; auth?: string | undefined; channel_data?: string | undefined }): void {
    const session = this.session;
    const name = data.channel;
    if (!session || this.byName.has(name)) return;
    if (name.startsWith(SERVER_TO_USER_PREFIX)) {
      const own = this.serverToUser(name);
      if (typeof own === "string") return this.refuseSubscription(name, "AuthError", own, 403);
      // The signin was the app's signature for this user: it stands for the channel's.
      return this.request(own, { member: undefined });
    }
    const parsed = this.deps.channelNames.parse(name);
    if (isPusherChannelRefusal(parsed)) {
      return this.refuseSubscription(name, "SubscriptionError", parsed.message, parsed.reason === "unknown_namespace" ? 404 : 400);
    }
    const uncached = parsed.cache ? this.deps.cache.refusal(parsed.channel.namespace, name) : undefined;
    if (uncached) return this.refuseSubscription(name, "SubscriptionError", uncached.message, uncached.status);
    let signed: SignedGrant | undefined;
    if (parsed.kind !== "public") {
      const checked = this.checkSignature(parsed, data);
      if (typeof checked === "string") return this.refuseSubscription(name, "AuthError", checked, 401);
      signed = checked;
    }
    this.request(parsed, signed);
  }

  /** The session's subscribe of `parsed`'s channel, answered as Pusher answers it. */
  private request(parsed: PusherChannel, signed: SignedGrant | undefined): void {
    const session = this.session;
    const name = parsed.pusherName;
    if (!session) return;
    const other = this.byChannel.get(parsed.channel.name);
    if (other) return this.refuseSubscription(name, "SubscriptionError", `${name}: this connection is subscribed to the same channel as ${other.pusherName}`, 400);
    this.byName.set(name, parsed);
    this.byChannel.set(parsed.channel.name, parsed);
    if (signed?.member) this.memberOf.set(name, signed.member.userId);
    const ref = this.nextRef++;
    this.pending.set(ref, { ok: () => this.succeeded(parsed), error: (refusal) => this.failed(parsed, refusal) });
    const presence = parsed.kind === "presence" ? { presence: true } : {};
    session.request({ op: "subscribe", ref, channel: parsed.channel.name, ...presence }, signed);
  }

  private unsubscribe(name: string): void {
    const pusher = this.byName.get(name);
    if (!pusher || !this.session) return;
    const ref = this.nextRef++;
    // Pusher answers no unsubscribe: neither the `ok` nor a refusal is written.
    this.pending.set(ref, { ok: () => undefined, error: () => undefined });
    // While it runs the session leaves the channel's topic, which needs the name: forgotten after.
    this.session.request({ op: "unsubscribe", ref, channel: pusher.channel.name });
    this.forget(pusher);
  }

  /** The SignedGrant of a private, encrypted or presence subscription, or why its signature does not admit it. */
  private checkSignature(pusher: PusherChannel, data: { auth?: string | undefined; channel_data?: string | undefined }): SignedGrant | string {
    const name = pusher.pusherName;
    const presence = pusher.kind === "presence";
    if (data.auth === undefined) {
      return `${name} needs "auth": the app's signature of "<socket_id>:${name}${presence ? ":<channel_data>" : ""}"`;
    }
    if (presence && data.channel_data === undefined) return `${name} needs "channel_data" with the member's user_id`;
    const signedText = channelAuthString(this.deps.socketId, name, presence ? data.channel_data : undefined);
    if (!verifyAuthToken(this.deps.app, signedText, data.auth)) return `${name}: the signature in "auth" is not the app's for this socket_id and channel`;
    if (!presence) return { member: undefined };
    const member = readChannelData(data.channel_data ?? "");
    return typeof member === "string" ? `${name}: ${member}` : { member };
  }

  private succeeded(pusher: PusherChannel): string | undefined {
    if (this.byName.get(pusher.pusherName) !== pusher) return undefined;
    this.subscribed.add(pusher.pusherName);
    if (pusher.cache) this.replayCache(pusher);
    if (showsSubscriptionCount(pusher)) this.sendSubscriptionCount(pusher);
    return subscriptionSucceeded(pusher.pusherName, pusher.kind === "presence" ? this.presenceData(pusher.channel.name) : {});
  }

  /**
   * The channel's count as this subscription made it, right after its
   * `subscription_succeeded` (written when this returns): the count shown to
   * the channel's subscribers at the change (SubscriberCountFanout) went out
   * before this socket joined the channel's topic.
   */
  private sendSubscriptionCount(pusher: PusherChannel): void {
    queueMicrotask(() => {
      if (this.byName.get(pusher.pusherName) !== pusher) return;
      this.deps.send(subscriptionCount(pusher.pusherName, this.deps.presence.subscriberCount(pusher.channel.name)));
    });
  }

  /** Sends a `cache-` channel's last event, or `pusher:cache_miss`, once read (after the `subscription_succeeded` being written now). */
  private replayCache(pusher: PusherChannel): void {
    const name = pusher.pusherName;
    const stands = (): boolean => this.byName.get(name) === pusher && this.subscribed.has(name);
    this.deps.cache.last(pusher.channel.name).then(
      (event) => {
        if (!stands()) return;
        if (event) return this.deps.send(channelEvent(name, event.type, event.data, pusher.kind === "presence" ? event.user : undefined));
        this.deps.send(cacheMiss(name));
        this.deps.webhooks.send(this.deps.app, { name: "cache_miss", channel: name });
      },
      () => {
        if (stands()) this.deps.send(pusherError(null, `${name}: its last event could not be read (the event store is unavailable); the subscription stands`));
      },
    );
  }

  private failed(pusher: PusherChannel, refusal: Extract<ServerFrame, { op: "error" }>): string | undefined {
    if (this.byName.get(pusher.pusherName) !== pusher) return undefined;
    this.forget(pusher);
    const auth = refusal.code === ErrorCode.Forbidden || refusal.code === ErrorCode.Unauthorized;
    return subscriptionError(pusher.pusherName, auth ? "AuthError" : "SubscriptionError", refusal.message, SUBSCRIPTION_ERROR_STATUS[refusal.code]);
  }

  /** `{presence: {ids, hash, count}}` as pusher-js builds its member list from (empty lists above PRESENCE_MAX_LISTED members). */
  private presenceData(channel: string): unknown {
    const listing = this.deps.presence.members(channel);
    const hash: Record<string, unknown> = {};
    for (const member of listing.members) hash[member.user] = member.info ?? null;
    return { presence: { ids: listing.members.map((member) => member.user), hash, count: listing.count } };
  }

  private forget(pusher: PusherChannel): void {
    if (this.byName.get(pusher.pusherName) === pusher) {
      this.byName.delete(pusher.pusherName);
      this.subscribed.delete(pusher.pusherName);
      this.memberOf.delete(pusher.pusherName);
    }
    if (this.byChannel.get(pusher.channel.name) === pusher) this.byChannel.delete(pusher.channel.name);
  }

  private refuse(message: string): void {
    this.deps.metrics.frameRejected(ErrorCode.BadRequest);
    this.deps.send(pusherError(null, message));
  }

  private refuseSubscription(name: string, type: "AuthError" | "SubscriptionError", message: string, status: number): void {
    this.deps.metrics.frameRejected(status === 401 ? ErrorCode.Unauthorized : ErrorCode.BadRequest);
    this.deps.send(subscriptionError(name, type, message, status));
  }
}

function clip(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}
