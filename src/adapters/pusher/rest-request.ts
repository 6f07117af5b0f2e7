import { HttpRejection } from "@sobranie/protocol/codes";
import type { PusherApp } from "./apps.js";
import { equalHex, hmacHex, md5Hex, restSigningString } from "./signatures.js";

/**
 * The Pusher REST request signature (docs/pusher.md, "REST API"): every
 * request carries `auth_key` (the app key), `auth_timestamp` (seconds, within
 * MAX_CLOCK_SKEW_SEC of this server's clock), `auth_version` 1.0, `body_md5`
 * when it has a body, and `auth_signature`, the HMAC of
 * `METHOD\n/path\nsorted query` (signatures.ts). A refusal names what is
 * wrong; the signature's refusal quotes the string to sign (it holds no secret).
 */

/** How far `auth_timestamp` may be from now, either way, as on Pusher's servers. */
export const MAX_CLOCK_SKEW_SEC = 600;

const REQUIRED = ["auth_key", "auth_timestamp", "auth_version", "auth_signature"] as const;
const SECONDS = /^\d{1,12}$/;

export interface SignedRequest {
  readonly method: "GET" | "POST";
  /** As sent, not decoded: what the SDKs sign. */
  readonly path: string;
  /** The query string as sent, without `?`. */
  readonly query: string;
  readonly body: Uint8Array;
}

export type RestVerdict =
  | { readonly ok: true; readonly params: ReadonlyMap<string, string> }
  | { readonly ok: false; readonly rejection: HttpRejection; readonly message: string; readonly badSignature: boolean };

/** The query's parameters, percent-decoded (`+` stays `+`, as the SDKs send it); a repeated or undecodable one is refused. */
export function parseRestQuery(query: string): { ok: true; params: Map<string, string> } | { ok: false; message: string } {
  const params = new Map<string, string>();
  for (const pair of query.split("&")) {
    if (pair === "") continue;
    const equals = pair.indexOf("=");
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent(equals < 0 ? pair : pair.slice(0, equals));
      value = equals < 0 ? "" : decodeURIComponent(pair.slice(equals + 1));
    } catch {
      return { ok: false, message: "the query is not valid percent-encoding" };
    }
    if (params.has(key)) return { ok: false, message: `query parameter ${key.slice(0, 64)} given twice` };
    params.set(key, value);
  }
  return { ok: true, params };
}

/** Whether `request` is signed by `app`, at `nowMs`. `badSignature`: a refusal that counts as a failed credential. */
export function verifyRestRequest(app: Pick<PusherApp, "key" | "secret">, request: SignedRequest, nowMs: number): RestVerdict {
  const parsed = parseRestQuery(request.query);
  if (!parsed.ok) return { ok: false, rejection: HttpRejection.BadRequest, message: parsed.message, badSignature: false };
  const { params } = parsed;
  const refuse = (message: string): RestVerdict => ({ ok: false, rejection: HttpRejection.Unauthorized, message, badSignature: true });
  const missing = REQUIRED.filter((name) => !params.has(name));
  if (missing.length > 0) return refuse(`a signed request needs ${REQUIRED.join(", ")}: ${missing.join(", ")} missing`);
  if (params.get("auth_key") !== app.key) return refuse("auth_key is not this app's key");
  if (params.get("auth_version") !== "1.0") return refuse("auth_version must be 1.0");
  const timestamp = params.get("auth_timestamp") ?? "";
  if (!SECONDS.test(timestamp)) return refuse("auth_timestamp must be whole seconds since the epoch");
  const skewSec = Math.abs(Math.floor(nowMs / 1000) - Number(timestamp));
  if (skewSec > MAX_CLOCK_SKEW_SEC) {
    return refuse(`auth_timestamp is ${skewSec} s away from the server's clock, more than ${MAX_CLOCK_SKEW_SEC} s: check the clock, sign again`);
  }
  if (request.body.byteLength > 0 || params.has("body_md5")) {
    const given = params.get("body_md5");
    if (given === undefined) return refuse("a request with a body needs body_md5, the hex MD5 of the body");
    if (!equalHex(given, md5Hex(request.body))) return refuse("body_md5 is not the MD5 of the body");
  }
  const signed = restSigningString(request.method, request.path, params);
  if (!equalHex(params.get("auth_signature") ?? "", hmacHex(app.secret, signed))) {
    return refuse(`auth_signature is not the HMAC-SHA256 hex, with the app secret, of ${JSON.stringify(signed)}`);
  }
  return { ok: true, params };
}
