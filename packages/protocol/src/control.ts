import * as v from "valibot";
import { CHANNEL_ID_PATTERN, parseChannel } from "./channel.js";

/**
 * Control commands: JSON messages on the `sobranie.control` exchange, which
 * every gateway node consumes (docs/protocol.md §11). Each one names a
 * user by the JWT `sub`, and acts on that user's connections on every node:
 *
 * - `disconnect`: close them, 4003 (`final`: do not reconnect) or 4001
 *   (`reauthenticate`: reconnect with a new token).
 * - `unsubscribe`: end their subscription to `channel` with an
 *   `unsubscribed` frame, reason `revoked`, without closing anything; their
 *   tokens issued before then may not subscribe to it again.
 * - `revoke` with `tokenId` (the JWT `jti`) or with `issuedBefore` (ms since
 *   the epoch; tokens whose `iat` is earlier, or that have no `iat`): close
 *   the sessions on such a token with 4001 and refuse the token from then on.
 */
export const ControlCommandName = {
  Disconnect: "disconnect",
  Unsubscribe: "unsubscribe",
  Revoke: "revoke",
} as const;
export type ControlCommandName = (typeof ControlCommandName)[keyof typeof ControlCommandName];

/** `disconnect` modes: the close code a client gets, and whether it may come back. */
export const DisconnectMode = {
  Final: "final",
  Reauthenticate: "reauthenticate",
} as const;
export type DisconnectMode = (typeof DisconnectMode)[keyof typeof DisconnectMode];

/** Largest control message accepted; real ones are a few hundred bytes. */
export const MAX_CONTROL_BYTES = 4_096;
/** Longest `jti` accepted, in the token and in a command. */
export const MAX_TOKEN_ID_CHARS = 256;
/** A WebSocket close reason holds at most 123 bytes. */
const MAX_REASON_BYTES = 123;

const UserSchema = v.pipe(
  v.string("user must be a string"),
  v.regex(CHANNEL_ID_PATTERN, "user must be a JWT sub: 1 to 128 characters of A-Z, a-z, 0-9, _ or -"),
);
const EpochMsSchema = (field: string) =>
  v.pipe(v.number(`${field} must be a number (ms since the epoch)`), v.safeInteger(`${field} must be a whole number of ms`), v.minValue(0, `${field} must not be negative`));

const DisconnectSchema = v.object(
  {
    command: v.literal(ControlCommandName.Disconnect),
    user: UserSchema,
    mode: v.picklist([DisconnectMode.Final, DisconnectMode.Reauthenticate], 'mode must be "final" or "reauthenticate"'),
    reason: v.optional(
      v.pipe(v.string("reason must be a string"), v.maxBytes(MAX_REASON_BYTES, `reason must be at most ${MAX_REASON_BYTES} bytes of UTF-8 (it becomes the close reason)`)),
    ),
  },
);
const UnsubscribeSchema = v.object(
  {
    command: v.literal(ControlCommandName.Unsubscribe),
    user: UserSchema,
    channel: v.pipe(
      v.string("channel must be a string"),
      v.check((text) => parseChannel(text) !== undefined, "channel must be namespace:id (namespace [a-z][a-z0-9_-]{0,31}, id [A-Za-z0-9_-]{1,128})"),
    ),
  },
);
const RevokeTokenSchema = v.object(
  {
    command: v.literal(ControlCommandName.Revoke),
    user: UserSchema,
    tokenId: v.pipe(
      v.string("tokenId must be a string"),
      v.minLength(1, "tokenId must not be empty"),
      v.maxLength(MAX_TOKEN_ID_CHARS, `tokenId must be at most ${MAX_TOKEN_ID_CHARS} characters`),
    ),
    /** The token's `exp` in ms, when known: the revocation is kept until then. */
    expiresAt: v.optional(EpochMsSchema("expiresAt")),
  },
);
const RevokeIssuedBeforeSchema = v.object(
  {
    command: v.literal(ControlCommandName.Revoke),
    user: UserSchema,
    issuedBefore: EpochMsSchema("issuedBefore"),
  },
);

export type DisconnectCommand = v.InferOutput<typeof DisconnectSchema>;
export type UnsubscribeCommand = v.InferOutput<typeof UnsubscribeSchema>;
export type RevokeTokenCommand = v.InferOutput<typeof RevokeTokenSchema>;
export type RevokeIssuedBeforeCommand = v.InferOutput<typeof RevokeIssuedBeforeSchema>;
export type RevokeCommand = RevokeTokenCommand | RevokeIssuedBeforeCommand;
export type ControlCommand = DisconnectCommand | UnsubscribeCommand | RevokeCommand;

export type ControlRejection = "too_large" | "not_json" | "invalid";
export type DecodedControl = { ok: true; command: ControlCommand } | { ok: false; reason: ControlRejection; message: string };

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Decodes a control message body. Never throws: a body that cannot be used
 * is reported with a reason (the consumer dead-letters and counts it).
 */
export function decodeControl(body: Uint8Array): DecodedControl {
  if (body.byteLength > MAX_CONTROL_BYTES) {
    return { ok: false, reason: "too_large", message: `control message of ${body.byteLength} bytes is over ${MAX_CONTROL_BYTES}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(body));
  } catch (error) {
    return { ok: false, reason: "not_json", message: `control message is not UTF-8 JSON: ${(error as Error).message}` };
  }
  return parseControl(json);
}

/** Validates a control command already parsed from JSON (the HTTP API's bodies too). */
export function parseControl(json: unknown): DecodedControl {
  const schema = schemaFor(json);
  if (typeof schema === "string") return { ok: false, reason: "invalid", message: schema };
  const parsed = v.safeParse(schema, json);
  if (!parsed.success) return { ok: false, reason: "invalid", message: describeIssue(parsed.issues[0]) };
  return { ok: true, command: parsed.output };
}

/** A missing field reads "mode is required", not valibot's "Invalid key". */
function describeIssue(issue: v.BaseIssue<unknown>): string {
  const key = issue.path?.[0]?.key;
  return issue.kind === "schema" && issue.type === "object" && issue.input === undefined && typeof key === "string" ? `${key} is required` : issue.message;
}

export function encodeControl(command: ControlCommand): string {
  return JSON.stringify(command);
}

/** The schema of the command `json` names, or why none applies (one message, not a union's every branch). */
function schemaFor(json: unknown): v.GenericSchema<unknown, ControlCommand> | string {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return "control message must be a JSON object";
  const fields = json as Record<string, unknown>;
  let schema: v.ObjectSchema<v.ObjectEntries, undefined>;
  switch (fields.command) {
    case ControlCommandName.Disconnect:
      schema = DisconnectSchema;
      break;
    case ControlCommandName.Unsubscribe:
      schema = UnsubscribeSchema;
      break;
    case ControlCommandName.Revoke:
      if ((fields.tokenId === undefined) === (fields.issuedBefore === undefined)) return "revoke needs exactly one of tokenId and issuedBefore";
      schema = fields.tokenId === undefined ? RevokeIssuedBeforeSchema : RevokeTokenSchema;
      break;
    default:
      return `command must be one of ${Object.values(ControlCommandName).join(", ")}`;
  }
  // A field this version does not know could be a restriction it would ignore: refused, not skipped.
  const unknown = Object.keys(fields).find((key) => !(key in schema.entries));
  if (unknown !== undefined) return `${String(fields.command)} does not take "${unknown.slice(0, 64)}" (fields: ${Object.keys(schema.entries).join(", ")})`;
  return schema as unknown as v.GenericSchema<unknown, ControlCommand>;
}
