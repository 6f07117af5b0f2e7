import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/**
 * The HMAC-SHA256 signatures of the Pusher protocol (docs/pusher.md,
 * "Signatures"), made and checked with an app's secret. Every check compares
 * in constant time and answers false, never throws, for any input.
 */

/** `socket_id:channel[:channel_data]`: what a private or presence subscription's `auth` signs. */
export function channelAuthString(socketId: string, channel: string, channelData?: string): string {
  return channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
}

/** `socket_id::user::user_data`: what `pusher:signin`'s `auth` signs. */
export function userAuthString(socketId: string, userData: string): string {
  return `${socketId}::user::${userData}`;
}

export function hmacHex(secret: string, text: string): string {
  return createHmac("sha256", secret).update(text, "utf8").digest("hex");
}

/** `<key>:<hex hmac of signed>`: the `auth` field a Pusher auth endpoint returns. */
export function authToken(app: { key: string; secret: string }, signed: string): string {
  return `${app.key}:${hmacHex(app.secret, signed)}`;
}

/** Whether `auth` is `<app key>:<signature of signed>`, in constant time for the signature. */
export function verifyAuthToken(app: { key: string; secret: string }, signed: string, auth: unknown): boolean {
  if (typeof auth !== "string") return false;
  const colon = auth.indexOf(":");
  if (colon < 0 || auth.slice(0, colon) !== app.key) return false;
  return equalHex(auth.slice(colon + 1), hmacHex(app.secret, signed));
}

export function md5Hex(body: string | Uint8Array): string {
  return createHash("md5").update(body).digest("hex");
}

/**
 * The string a REST request signs: `METHOD\n/path\nsorted query`, where the
 * query holds every parameter except `auth_signature`, keys lower-cased,
 * sorted by key, joined as `k=v` with `&`, values percent-decoded (as the
 * server SDKs sign them, before URL-encoding).
 */
export function restSigningString(method: string, path: string, query: ReadonlyMap<string, string>): string {
  const pairs = [...query].filter(([key]) => key !== "auth_signature").map(([key, value]) => [key.toLowerCase(), value] as const);
  pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${method.toUpperCase()}\n${path}\n${pairs.map(([key, value]) => `${key}=${value}`).join("&")}`;
}

/** Constant-time equality of two lower-case hex strings; false on any length or alphabet mismatch. */
export function equalHex(given: string, expected: string): boolean {
  if (given.length !== expected.length || !/^[0-9a-f]*$/.test(given)) return false;
  return timingSafeEqual(Buffer.from(given, "utf8"), Buffer.from(expected, "utf8"));
}
