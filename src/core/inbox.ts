import * as v from "valibot";
import { storedEventFrame } from "./event-frames.js";
import type { EventStore } from "./ports/event-store.js";
import type { EventFrame } from "@sobranie/protocol/frames";

export const INBOX_DEFAULT_LIMIT = 50;
export const INBOX_MAX_LIMIT = 500;

const seq = v.pipe(v.string(), v.regex(/^\d{1,15}$/, "must be a whole number"), v.transform(Number));
const InboxQuerySchema = v.object({
  after: v.optional(seq, "0"),
  limit: v.optional(v.pipe(seq, v.minValue(1, "must be at least 1"), v.maxValue(INBOX_MAX_LIMIT, `must be at most ${INBOX_MAX_LIMIT}`)), String(INBOX_DEFAULT_LIMIT)),
});
const ReadBodySchema = v.object({ upTo: v.pipe(v.number("upTo must be a number"), v.safeInteger("upTo must be whole"), v.minValue(0)) });

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/** `?after=<seq>&limit=<n>` of GET /api/v1/notifications. */
export function parseInboxQuery(query: { after?: string | undefined; limit?: string | undefined }): Parsed<{ after: number; limit: number }> {
  const parsed = v.safeParse(InboxQuerySchema, Object.fromEntries(Object.entries(query).filter(([, value]) => value !== undefined && value !== "")));
  return parsed.success ? { ok: true, value: parsed.output } : { ok: false, message: v.summarize(parsed.issues) };
}

/** `{upTo}` of POST /api/v1/notifications/read. */
export function parseReadBody(json: unknown): Parsed<{ upTo: number }> {
  const parsed = v.safeParse(ReadBodySchema, json);
  return parsed.success ? { ok: true, value: parsed.output } : { ok: false, message: v.summarize(parsed.issues) };
}

export interface InboxPage {
  readonly notifications: EventFrame[];
  readonly unread: number;
  readonly readUpTo: number;
}

/** The caller's inbox, oldest first, as the same event frames the WebSocket carries. */
export async function readInbox(store: EventStore, userId: string, after: number, limit: number): Promise<InboxPage> {
  const inbox = await store.inbox(userId, after, limit);
  return { notifications: inbox.events.map(storedEventFrame), unread: inbox.unread, readUpTo: inbox.readUpTo };
}
