import { USER_ID_PATTERN, USER_ID_RULE } from "@sobranie/protocol/channel";

/**
 * What an app's signature covers besides the socket and channel: a presence
 * subscription's `channel_data` and a signin's `user_data`, both JSON text
 * the SDKs pass through as the app's auth endpoint made it. Read only once
 * the signature over the exact text checked out (socket-connection.ts).
 */

/** Most bytes of a presence member's `user_info` (as JSON), like the JWT `info` claim. */
const MAX_USER_INFO_BYTES = 1024;
/** Most user ids in a signin's `user_data.watchlist`, as Pusher allows. */
const MAX_WATCHLIST = 100;

/**
 * A signin's `user_data`: `id` within our user-id grammar, and an optional
 * `watchlist` of at most MAX_WATCHLIST user ids, repeats dropped. A string:
 * why it is refused.
 */
export function readUserData(text: string): { id: string; watchlist: string[] } | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return "user_data is not JSON";
  }
  const { id, watchlist } = typeof json === "object" && json !== null ? (json as { id?: unknown; watchlist?: unknown }) : {};
  if (typeof id !== "string" || !USER_ID_PATTERN.test(id)) return `user_data.id must be a string; ${USER_ID_RULE}`;
  if (watchlist === undefined) return { id, watchlist: [] };
  if (!Array.isArray(watchlist)) return "user_data.watchlist must be an array of user ids";
  if (watchlist.length > MAX_WATCHLIST) return `user_data.watchlist has ${watchlist.length} user ids; at most ${MAX_WATCHLIST}`;
  const bad = watchlist.findIndex((watched) => typeof watched !== "string" || !USER_ID_PATTERN.test(watched));
  if (bad !== -1) return `user_data.watchlist[${bad}] must be a string; ${USER_ID_RULE}`;
  return { id, watchlist: [...new Set(watchlist as string[])] };
}

/**
 * A presence subscription's signed `channel_data`: `user_id` (a string, or a
 * number read as its decimal text) within our user-id grammar, since it is
 * the member's id on every node and to backends, and an optional
 * `user_info` of at most 1 KiB of JSON. A string: why it is refused.
 */
export function readChannelData(text: string): { userId: string; info: unknown } | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return "channel_data is not JSON";
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return "channel_data must be a JSON object {user_id, user_info?}";
  const { user_id: rawId, user_info: info } = json as { user_id?: unknown; user_info?: unknown };
  const userId = typeof rawId === "number" && Number.isSafeInteger(rawId) ? String(rawId) : rawId;
  if (typeof userId !== "string") return "channel_data.user_id must be a string or a whole number";
  if (!USER_ID_PATTERN.test(userId)) return `channel_data.user_id: ${USER_ID_RULE}`;
  if (info !== undefined && Buffer.byteLength(JSON.stringify(info)) > MAX_USER_INFO_BYTES) return `channel_data.user_info is over ${MAX_USER_INFO_BYTES} bytes`;
  return { userId, info };
}
