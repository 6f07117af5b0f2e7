import * as v from "valibot";
import { EVENT_TYPE_PATTERN, parseChannel, type Channel } from "@sobranie/protocol/channel";
import { EventDataSchema } from "@sobranie/protocol/frames";
import type { Parsed } from "./inbox.js";

const PublishBodySchema = v.object({
  channel: v.pipe(v.string("channel must be a string"), v.maxLength(200)),
  type: v.pipe(v.string("type must be a string"), v.regex(EVENT_TYPE_PATTERN, "type must be dot-separated words of [A-Za-z0-9_-]")),
  data: EventDataSchema,
  id: v.optional(v.pipe(v.string("id must be a string"), v.minLength(1), v.maxLength(64))),
});

export interface BackendPublish {
  readonly channel: Channel;
  readonly type: string;
  readonly data: unknown;
  /** The caller's event id (used to drop duplicates); one is made when absent. */
  readonly id: string | undefined;
}

/** The body of `POST /api/v1/publish`: `{channel, type, data, id?}`. */
export function parseBackendPublish(json: unknown): Parsed<BackendPublish> {
  const parsed = v.safeParse(PublishBodySchema, json);
  if (!parsed.success) return { ok: false, message: v.summarize(parsed.issues) };
  const channel = parseChannel(parsed.output.channel);
  if (!channel) return { ok: false, message: `"${parsed.output.channel.slice(0, 64)}" is not a channel: namespace:id` };
  return { ok: true, value: { channel, type: parsed.output.type, data: parsed.output.data, id: parsed.output.id } };
}
