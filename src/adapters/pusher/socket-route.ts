import { randomInt } from "node:crypto";
import type { AdmissionTicket } from "../../core/connections.js";
import type { Gateway } from "../../core/gateway.js";
import type { Principal } from "../../core/ports/authenticator.js";
import type { Clock, Timer } from "@sobranie/protocol/runtime/clock";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Metrics } from "../../core/ports/metrics.js";
import type { EdgeRequest, EdgeServer, EdgeWebSocket } from "../../core/ports/edge.js";
import type { Session } from "../../core/session.js";
import type { PusherApp, PusherApps } from "./apps.js";
import type { PusherChannelNames } from "./channel-names.js";
import { PusherCode } from "./socket-codes.js";
import { PusherConnection } from "./socket-connection.js";
import { PUSHER_PING } from "./socket-frames.js";
import { PusherSessionSocket } from "./socket-session-socket.js";
import { PusherCacheSource } from "./socket-cache.js";
import { PusherWebhookEntry } from "./socket-webhooks.js";

/** The Pusher protocol's longest `activity_timeout`, in seconds. */
const MAX_ACTIVITY_TIMEOUT_SEC = 120;
/** The oldest protocol version that answers `pusher:ping` (version 5). */
const MIN_PROTOCOL = 5;
/** How often silent connections are looked for (to be sent `pusher:ping`), at most: a quarter of the activity timeout where that is shorter. */
const MAX_PING_SWEEP_MS = 1_000;

export interface PusherSocketDeps {
  readonly server: EdgeServer;
  readonly gateway: Gateway;
  readonly apps: PusherApps;
  readonly channelNames: PusherChannelNames;
  /** Where `cache-` channels' last events come from. */
  readonly cache: PusherCacheSource;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly maxFrameBytes: number;
  /** The session's heartbeat TTL (PRESENCE_TTL_MS): silence past it closes the connection, 4201 here. */
  readonly ttlMs: number;
}

/** What a refused connection is closed with, right after its upgrade (Pusher clients read close codes, not HTTP statuses). */
interface Refusal {
  readonly code: number;
  readonly message: string;
}

interface PusherSocketData {
  readonly refusal: Refusal | undefined;
  readonly app: PusherApp | undefined;
  readonly ticket: AdmissionTicket | undefined;
  readonly socketId: string;
  open: OpenPusherSocket | undefined;
}

interface OpenPusherSocket {
  readonly app: PusherApp;
  readonly session: Session;
  readonly connection: PusherConnection;
  readonly socket: PusherSessionSocket<PusherSocketData>;
  lastHeardMs: number;
  pinged: boolean;
  reconnect: Timer | undefined;
  /** The app's signin deadline (`signinTimeoutMs`), until the connection signs in. */
  signinDeadline: Timer | undefined;
}

/** Returned by `registerPusherSockets`: stops the ping sweep (the sessions themselves close with the gateway). */
export interface PusherSockets {
  stop(): void;
}

/**
 * The Pusher protocol's WebSocket endpoint, `/app/{key}?protocol=7`
 * (docs/pusher.md), on the node's edge server: every connection is a core
 * Session (admission, limits, subscriptions, presence and fan-out are the
 * native protocol's), spoken to by a PusherConnection.
 *
 * Refusals are decided before the upgrade and sent as close codes right
 * after it, as Pusher servers do: unknown key 4001, disabled app 4003, a
 * missing, malformed or too old `protocol` 4008/4006/4007, over the app's
 * `maxConnections` or the node's capacity 4100, draining or without a
 * broker 4200. An app with `signinTimeoutMs` closes a connection that has
 * not signed in by then with 4009.
 *
 * Idle handling: the server advertises `activity_timeout` (half the
 * session's heartbeat TTL, at most 120 s), sends `pusher:ping` and a
 * WebSocket ping to a connection silent that long (a `pusher:pong`, a
 * WebSocket pong, any frame or a ping of the client's is hearing from it),
 * and the session closes one silent for the whole TTL (4201).
 */
export function registerPusherSockets(deps: PusherSocketDeps): PusherSockets {
  const { gateway, apps, metrics } = deps;
  const activityTimeoutSec = Math.max(1, Math.min(MAX_ACTIVITY_TIMEOUT_SEC, Math.floor(deps.ttlMs / 2000)));
  const open = new Set<OpenPusherSocket>();
  const perApp = new Map<string, number>();
  const webhooks = new PusherWebhookEntry((routingKey, body) => gateway.publishForWorkers(routingKey, body), deps.logger);

  const refusalFor = (app: PusherApp | undefined, key: string, protocol: string | undefined): Refusal | undefined => {
    if (!app) return { code: PusherCode.AppUnknown, message: `no app has the key ${key.slice(0, 64)}` };
    if (!app.enabled) return { code: PusherCode.AppDisabled, message: "the app is disabled" };
    if (protocol === undefined || protocol === "") return { code: PusherCode.NoProtocol, message: "no protocol version supplied (?protocol=7)" };
    if (!/^\d{1,4}$/.test(protocol)) return { code: PusherCode.InvalidVersion, message: "the protocol version must be a whole number (?protocol=7)" };
    if (Number(protocol) < MIN_PROTOCOL) return { code: PusherCode.UnsupportedProtocol, message: `protocol ${protocol} is not supported: use 7` };
    if (app.maxConnections !== undefined && (perApp.get(app.id) ?? 0) >= app.maxConnections) {
      return { code: PusherCode.OverCapacity, message: "the app is over its connection limit" };
    }
    return undefined;
  };

  const upgrade = (req: EdgeRequest): PusherSocketData => {
    const key = req.param(0) ?? "";
    const app = apps.byKey(key);
    const socketId = `${randomInt(1, 2 ** 31)}.${randomInt(1, 2 ** 31)}`;
    const refused = refusalFor(app, key, req.query("protocol"));
    if (refused || !app) return { refusal: refused, app, ticket: undefined, socketId, open: undefined };
    const admission = gateway.admit(socketPrincipal(socketId));
    if (!admission.ok) {
      const reconnect = admission.reason === "draining" || admission.reason === "broker_unavailable";
      metrics.upgradeRejected(admission.reason);
      const refusal = reconnect
        ? { code: PusherCode.Reconnect, message: "this node is not taking connections now: reconnect" }
        : { code: PusherCode.OverCapacity, message: "over capacity: reconnect later" };
      return { refusal, app, ticket: undefined, socketId, open: undefined };
    }
    perApp.set(app.id, (perApp.get(app.id) ?? 0) + 1);
    return { refusal: undefined, app, ticket: admission.ticket, socketId, open: undefined };
  };

  const opened = (ws: EdgeWebSocket<PusherSocketData>): void => {
    const data = ws.data;
    if (data.refusal || !data.app || !data.ticket) {
      ws.close(data.refusal?.code ?? PusherCode.Reconnect, data.refusal?.message ?? "refused");
      return;
    }
    const app = data.app;
    let state: OpenPusherSocket | undefined;
    const connection = new PusherConnection({
      app,
      socketId: data.socketId,
      activityTimeoutSec,
      channelNames: deps.channelNames,
      presence: gateway.presence,
      metrics,
      cache: deps.cache,
      webhooks,
      signIn: (userId) => {
        if (!state) return;
        state.signinDeadline?.cancel();
        state.signinDeadline = undefined;
        gateway.signIn(state.session, userId);
      },
      watch: (users) => socket.watch(users),
      send: (text) => socket.send(text),
      reconnectAfter: (afterMs) => {
        if (state && !state.reconnect) {
          state.reconnect = deps.clock.setTimeout(() => socket.closeWith(PusherCode.Reconnect, "reconnect: this node is going away"), afterMs);
        }
      },
    });
    const socket = new PusherSessionSocket(ws, gateway.wires, (channel) => connection.pusherChannelOf(channel));
    // Registered before the session opens: from then on its own publishes may come back, and must skip it.
    gateway.wires.addSocket(data.socketId, (topic, text) => ws.publishToOthers(topic, text));
    const session = gateway.open(data.ticket, socket, connection);
    connection.attach(session);
    const signinTimeoutMs = app.signinTimeoutMs;
    const signinDeadline =
      signinTimeoutMs === undefined
        ? undefined
        : deps.clock.setTimeout(() => socket.closeWith(PusherCode.Unauthorized, `not signed in (pusher:signin) within ${signinTimeoutMs} ms`), signinTimeoutMs);
    state = { app, session, connection, socket, lastHeardMs: deps.clock.now(), pinged: false, reconnect: undefined, signinDeadline };
    data.open = state;
    open.add(state);
    metrics.connectionOpened("pusher");
  };

  const heard = (state: OpenPusherSocket): void => {
    state.lastHeardMs = deps.clock.now();
    state.pinged = false;
  };
  /** A WebSocket ping or pong: the connection and its session heard from the client. */
  const heardControlFrame = (state: OpenPusherSocket | undefined): void => {
    if (!state) return;
    heard(state);
    state.session.heard();
  };

  deps.server.webSocket<PusherSocketData>("/app/:key", {
    // As on the native endpoint: the runtime's own cap sits above the limit, so the session refuses a frame over it itself.
    maxPayloadBytes: deps.maxFrameBytes * 2,
    upgrade: (exchange) => exchange.accept(upgrade(exchange.request)),
    open: opened,
    text: (ws, text, bytes) => {
      const state = ws.data.open;
      if (!state) return;
      heard(state);
      state.connection.receive(text, bytes);
    },
    binary: (ws, bytes) => {
      const state = ws.data.open;
      if (!state) return;
      heard(state);
      state.session.receiveBinary(bytes);
    },
    ping: (ws) => heardControlFrame(ws.data.open),
    pong: (ws) => heardControlFrame(ws.data.open),
    close: (ws, code) => {
      const data = ws.data;
      const state = data.open;
      if (data.app && data.ticket) {
        const left = (perApp.get(data.app.id) ?? 1) - 1;
        if (left > 0) perApp.set(data.app.id, left);
        else perApp.delete(data.app.id);
      }
      if (!state) {
        data.ticket?.cancel();
        return;
      }
      open.delete(state);
      gateway.wires.removeSocket(data.socketId);
      state.reconnect?.cancel();
      state.signinDeadline?.cancel();
      state.socket.markClosed();
      gateway.closed(state.session);
      metrics.connectionClosed("pusher", code);
    },
  });

  const sweep = deps.clock.setInterval(() => {
    const silentSince = deps.clock.now() - activityTimeoutSec * 1000;
    for (const state of open) {
      if (state.pinged || state.lastHeardMs > silentSince) continue;
      state.pinged = true;
      // Both pings: SDKs answer `pusher:ping`, and every WebSocket stack answers a ping frame on its own.
      state.socket.send(PUSHER_PING);
      state.socket.ping();
    }
  }, Math.min(MAX_PING_SWEEP_MS, activityTimeoutSec * 250));
  return { stop: () => sweep.cancel() };
}

/**
 * Who a Pusher connection is to the core: its socket id as its user id (a
 * connection is nobody's until it signs in, and counts no user online; a
 * signin makes it its user's too, Gateway.signIn), no JWT claims, and no
 * expiry.
 */
function socketPrincipal(socketId: string): Principal {
  return { userId: `pusher-${socketId.replace(".", "-")}`, expiresAtMs: Number.MAX_SAFE_INTEGER, channelPatterns: [], info: undefined };
}
