import { createRequire } from "node:module";
import PusherServer from "pusher";
import WebSocket from "ws";
import type { Channel, ChannelAuthorizationCallback, PresenceChannel, UserAuthenticationCallback } from "pusher-js";
import type PusherJs from "pusher-js";
import { waitFor } from "./wait-for.js";

/**
 * pusher-js's Node build, as a Node app loads it: its CommonJS export is the
 * class itself, while its typings declare an ES default export.
 */
const Pusher = createRequire(import.meta.url)("pusher-js") as typeof PusherJs.default;
type Pusher = PusherJs.default;
/** The pusher-js class, for libraries built on it (laravel-echo's `Pusher` option). */
export { Pusher as PusherJs };

/** The Pusher app the gateways of these tests are configured with (PUSHER_APPS). */
export const PUSHER_APP = { id: "app-1", key: "test-app-key", secret: "test-app-secret-0123456789" } as const;

export function pusherAppsEnv(extra: Record<string, unknown> = {}, more: readonly Record<string, unknown>[] = []): string {
  return JSON.stringify([{ ...PUSHER_APP, ...extra }, ...more]);
}

/** The app's master key for encrypted channels (base64 of 32 bytes), as its backend holds it; the gateway never has it. */
export const ENCRYPTION_MASTER_KEY = Buffer.alloc(32, 7).toString("base64");

/** The app's backend as the real `pusher` server SDK: it signs channel and user auth for the clients (and encrypted channels' shared secrets). */
export const appBackend = new PusherServer({
  appId: PUSHER_APP.id,
  key: PUSHER_APP.key,
  secret: PUSHER_APP.secret,
  host: "127.0.0.1",
  useTLS: false,
  encryptionMasterKeyBase64: ENCRYPTION_MASTER_KEY,
});

export interface PusherClientOptions {
  readonly key?: string;
  /** The member a presence subscription is signed for. */
  readonly member?: { user_id: string; user_info?: Record<string, unknown> };
  /** Signs with this secret instead of the app's (a forged signature). */
  readonly secret?: string;
  /** Whom `signin()` signs in as (the app's `authenticateUser`), and whose online/offline changes they watch. */
  readonly user?: { id: string; user_info?: Record<string, unknown>; watchlist?: string[] };
}

/** pusher-js's options for a gateway on `port` on loopback, WebSocket only (no TLS, no fallbacks). */
export function gatewayConnection(port: number) {
  return { wsHost: "127.0.0.1", wsPort: port, forceTLS: false, enabledTransports: ["ws" as const] };
}

/**
 * pusher-js's channel authorization as an app's auth endpoint would answer
 * it, signed by the real `pusher` SDK (`authorizeChannel`); presence
 * channels as `member`.
 */
export function channelAuthorizedBy(signer: PusherServer, member: { user_id: string; user_info?: Record<string, unknown> } | undefined) {
  return {
    transport: "ajax" as const,
    endpoint: "unused",
    customHandler: ({ socketId, channelName }: { socketId: string; channelName: string }, callback: ChannelAuthorizationCallback) => {
      const presence = channelName.startsWith("presence-");
      callback(null, presence && member ? signer.authorizeChannel(socketId, channelName, member) : signer.authorizeChannel(socketId, channelName));
    },
  };
}

/**
 * The real pusher-js (its Node build) against a gateway on `port`, WebSocket
 * only; channel and user auth are signed by the real `pusher` SDK in custom
 * handlers, as an app's auth endpoints would.
 */
export function pusherClient(port: number, options: PusherClientOptions = {}): Pusher {
  const signer = options.secret === undefined ? appBackend : new PusherServer({ appId: PUSHER_APP.id, key: PUSHER_APP.key, secret: options.secret, host: "127.0.0.1", useTLS: false });
  return new Pusher(options.key ?? PUSHER_APP.key, {
    cluster: "mt1",
    ...gatewayConnection(port),
    channelAuthorization: channelAuthorizedBy(signer, options.member),
    userAuthentication: {
      transport: "ajax",
      endpoint: "unused",
      customHandler: ({ socketId }: { socketId: string }, callback: UserAuthenticationCallback) => {
        if (!options.user) return callback(new Error("this test client signs in as nobody"), null);
        callback(null, signer.authenticateUser(socketId, options.user));
      },
    },
  });
}

/** Resolves once pusher-js says `connected`. */
export async function connected(client: Pusher, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => client.connection.state === "connected", timeoutMs, "pusher-js connected");
}

/** Subscribes and resolves with the `pusher:subscription_succeeded` data, or rejects with the `pusher:subscription_error` data. */
export function subscribed<C extends Channel = Channel>(client: Pusher, name: string): Promise<{ channel: C; data: unknown }> {
  const channel = client.subscribe(name) as C;
  return new Promise((resolve, reject) => {
    channel.bind("pusher:subscription_succeeded", (data: unknown) => resolve({ channel, data }));
    channel.bind("pusher:subscription_error", (error: unknown) => reject(Object.assign(new Error(`subscription to ${name} refused`), { data: error })));
  });
}

/** The `pusher:subscription_error` data of a subscribe that must be refused. */
export async function refused(client: Pusher, name: string): Promise<{ type: string; error: string; status: number }> {
  try {
    await subscribed(client, name);
  } catch (error) {
    return (error as { data: { type: string; error: string; status: number } }).data;
  }
  throw new Error(`subscription to ${name} succeeded`);
}

/** Every event `channel` receives under `event`, in order. */
export function collect(channel: Channel, event: string): unknown[] {
  const received: unknown[] = [];
  channel.bind(event, (data: unknown) => received.push(data));
  return received;
}

/** The close codes pusher-js reports, in order (its `error` event: `{type: "WebSocketError", error: {type: "PusherError", data: {code}}}`). */
export function closeCodes(client: Pusher): number[] {
  const codes: number[] = [];
  client.connection.bind("error", (error: { error?: { data?: { code?: unknown } } }) => {
    const code = error?.error?.data?.code;
    if (typeof code === "number") codes.push(code);
  });
  return codes;
}

export interface PusherFrame {
  readonly event: string;
  readonly channel?: string;
  readonly data?: unknown;
}

export interface RawPusher {
  readonly socket: WebSocket;
  /** Every frame received, in order. */
  readonly frames: PusherFrame[];
  /** WebSocket ping frames received. */
  readonly pings: { count: number };
  readonly closed: Promise<number>;
  send(frame: unknown): void;
}

/**
 * A raw WebSocket on the Pusher endpoint, for what pusher-js hides: every
 * frame it got, in order, and its close code. It answers WebSocket pings as
 * every WebSocket stack does, unless `autoPong` is false.
 */
export async function rawPusher(port: number, path = `/app/${PUSHER_APP.key}?protocol=7`, options: { autoPong?: boolean } = {}): Promise<RawPusher> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`, { autoPong: options.autoPong ?? true });
  const frames: PusherFrame[] = [];
  const pings = { count: 0 };
  socket.on("ping", () => (pings.count += 1));
  socket.on("message", (data) => frames.push(JSON.parse(data.toString()) as PusherFrame));
  const closed = new Promise<number>((resolve) => socket.on("close", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  return { socket, frames, pings, closed, send: (frame) => socket.send(JSON.stringify(frame)) };
}

/** Another configured app than PUSHER_APP, for the sockets of `rawSubscribed`. */
export interface OtherPusherApp {
  readonly id: string;
  readonly key: string;
  readonly secret: string;
}

/**
 * A raw socket of the app (PUSHER_APP, or `options.app`) that sent
 * `pusher:subscribe` to `channel`, signed by the app (for a presence channel,
 * as member `userId`), once answered.
 */
export async function rawSubscribed(port: number, channel: string, options: { userId?: string; app?: OtherPusherApp } = {}): Promise<RawPusher & { socketId: string }> {
  const other = options.app;
  const signer = other === undefined ? appBackend : new PusherServer({ appId: other.id, key: other.key, secret: other.secret, host: "127.0.0.1", useTLS: false });
  const raw = await rawPusher(port, other === undefined ? undefined : `/app/${other.key}?protocol=7`);
  await waitFor(() => raw.frames.length > 0);
  const socketId = (JSON.parse(raw.frames[0]!.data as string) as { socket_id: string }).socket_id;
  const auth = channel.startsWith("private-") || channel.startsWith("presence-")
    ? options.userId === undefined
      ? signer.authorizeChannel(socketId, channel)
      : signer.authorizeChannel(socketId, channel, { user_id: options.userId })
    : {};
  raw.send({ event: "pusher:subscribe", data: { channel, ...auth } });
  await waitFor(() => raw.frames.some((frame) => frame.channel === channel && /subscription_(succeeded|error)$/.test(frame.event)));
  return { ...raw, socketId };
}

export type { PresenceChannel };
