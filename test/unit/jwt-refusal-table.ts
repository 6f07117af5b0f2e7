import { createHmac, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import type { JwtAuthenticatorOptions } from "../../src/adapters/jose/jwt-authenticator.js";

/**
 * One table of tokens, valid and spoiled in every way we know, that both
 * paths of JwtAuthenticator (`verify` with jose, `verifyNow` with node:crypto)
 * must decide alike. Tokens are assembled by hand so that each spoiled part
 * can still carry a valid signature: what is tested is then the decoder and
 * the claim rules, not only the signature check. The table comes in two
 * kinds, one per token kind: connection tokens (`verify`, `verifyNow`) and
 * subscription tokens (`verifySubscription`, `verifySubscriptionNow`); each
 * kind's valid tokens carry what the other kind must refuse.
 */

export type TokenKind = "connection" | "subscription";
/** The channel every subscription token of the table names. */
export const SUBSCRIPTION_CHANNEL = "vip:42";

export type Verdict = "accepted" | "refused";

export interface TokenCase {
  readonly name: string;
  readonly token: string;
  /** What jose decides (and what verifyNow must decide too). */
  readonly verdict: Verdict;
  /** verifyNow may leave this one to `verify` (returns undefined): jose decides it with rules the sync path does not copy. */
  readonly syncDefers?: boolean;
}

/** A key kind: the options of an authenticator and how to sign for it. */
export interface SigningKit {
  readonly name: string;
  readonly alg: "HS256" | "RS256" | "ES256";
  readonly options: JwtAuthenticatorOptions;
  /** The raw signature (JWS form: r‖s for ES256) of a signing input. */
  sign(input: string): Buffer;
  /** A signature by another key of the same kind. */
  signWithOtherKey(input: string): Buffer;
  /** ES256 only: the DER form node:crypto produces by default, which JWS forbids. */
  signDer?(input: string): Buffer;
}

export const ISSUER = "sobranie";
export const AUDIENCE = "clients";
const SECRET = "a-test-secret-that-is-long-enough-32";
const OTHER_SECRET = "another-secret-that-is-long-enough-x";

const hmac = (secret: string) => (input: string) => createHmac("sha256", secret).update(input).digest();
const signWith = (privateKey: KeyObject, dsaEncoding?: "ieee-p1363" | "der") => (input: string) =>
  sign("sha256", Buffer.from(input), dsaEncoding ? { key: privateKey, dsaEncoding } : privateKey);
const spki = (key: KeyObject) => key.export({ type: "spki", format: "pem" }).toString();
const claimsOptions = { issuer: ISSUER, audience: AUDIENCE };

export function signingKits(): SigningKit[] {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2_048 });
  const otherRsa = generateKeyPairSync("rsa", { modulusLength: 2_048 });
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const otherEc = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return [
    { name: "HS256 secret", alg: "HS256", options: { secret: SECRET, ...claimsOptions }, sign: hmac(SECRET), signWithOtherKey: hmac(OTHER_SECRET) },
    {
      name: "RS256 PEM",
      alg: "RS256",
      options: { publicKeyPem: spki(rsa.publicKey), ...claimsOptions },
      sign: signWith(rsa.privateKey),
      signWithOtherKey: signWith(otherRsa.privateKey),
    },
    {
      name: "ES256 PEM",
      alg: "ES256",
      options: { publicKeyPem: spki(ec.publicKey), ...claimsOptions },
      sign: signWith(ec.privateKey, "ieee-p1363"),
      signWithOtherKey: signWith(otherEc.privateKey, "ieee-p1363"),
      signDer: signWith(ec.privateKey, "der"),
    },
  ];
}

const b64 = (content: string | Buffer): string => Buffer.from(content).toString("base64url");
const json = (value: unknown): string => (typeof value === "string" ? value : JSON.stringify(value));
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * The same bytes spelled differently: the last character's unused low bits
 * set (a decoder ignores them). Undefined when the part has no unused bits.
 */
function withPadBitsSet(part: string): string | undefined {
  const unusedBits = { 2: 4, 3: 2 }[part.length % 4];
  if (unusedBits === undefined) return undefined;
  const last = ALPHABET.indexOf(part.at(-1) ?? "");
  return part.slice(0, -1) + ALPHABET[last | 1];
}

/** Ways to misspell one base64url part, each meaning (nearly) the same bytes to a lenient decoder. */
function misspellings(part: string): Array<[string, string]> {
  const middle = Math.floor(part.length / 2);
  const spelled: Array<[string, string | undefined]> = [
    ["one = of padding", `${part}=`],
    ["== padding", `${part}==`],
    ["+ and / for - and _", part.replace(/-/g, "+").replace(/_/g, "/")],
    ["a trailing !", `${part}!`],
    ["a trailing %00", `${part}%00`],
    ["an inserted space", `${part.slice(0, middle)} ${part.slice(middle)}`],
    ["an inserted newline", `${part.slice(0, middle)}\n${part.slice(middle)}`],
    ["an inserted tab", `${part.slice(0, middle)}\t${part.slice(middle)}`],
    ["a non-ASCII character", `${part}é`],
    ["one character too many (length 4n+1)", part + "A".repeat((5 - (part.length % 4)) % 4 || 4)],
    ["the last character's unused bits set", withPadBitsSet(part)],
  ];
  return spelled.filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== part);
}

/** Every case for one key kind and token kind, with times relative to `nowSec`. */
export function tokenCases(kit: SigningKit, nowSec: number, kind: TokenKind = "connection"): TokenCase[] {
  const alg = kit.alg;
  const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    sub: "u1",
    exp: nowSec + 600,
    iss: ISSUER,
    aud: AUDIENCE,
    ...(kind === "subscription" ? { channel: SUBSCRIPTION_CHANNEL } : {}),
    ...extra,
  });
  /** The raw JSON cases below spell their claims by hand: this is the kind's own claim, spelled the same way. */
  const kindJson = kind === "subscription" ? `,"channel":"${SUBSCRIPTION_CHANNEL}"` : "";
  const without = (name: string): Record<string, unknown> => {
    const all = claims();
    delete all[name];
    return all;
  };
  // Six tildes encode to a "-" whatever their alignment, so every part has a character "+/" can misspell.
  const header = (extra: Record<string, unknown> = {}) => ({ alg, typ: "JWT", nonce: "~~~~~~", ...extra });
  /** A token signed over its own (possibly spoiled) header and payload parts. */
  const signedParts = (headerPart: string, payloadPart: string, signer = kit.sign): string =>
    `${headerPart}.${payloadPart}.${b64(signer(`${headerPart}.${payloadPart}`))}`;
  const token = (headerValue: unknown, payloadValue: unknown): string => signedParts(b64(json(headerValue)), b64(json(payloadValue)));
  const cases: TokenCase[] = [];
  const add = (verdict: Verdict, name: string, value: string, syncDefers = false) =>
    cases.push({ name, token: value, verdict, ...(syncDefers ? { syncDefers } : {}) });

  // A base token whose signature part holds a "-" or "_" too (the payload's jti varies until it does).
  let base = token(header(), claims({ jti: "~~~~~~" }));
  for (let nonce = 0; !/[-_]/.test(base.split(".")[2] ?? ""); nonce += 1) base = token(header(), claims({ jti: `~~~~~~${nonce}` }));
  const [h, p, s] = base.split(".") as [string, string, string];

  // Valid tokens and harmless variants.
  add("accepted", "the base token", base);
  add("accepted", "minimal claims, header {alg} only", token({ alg }, claims()));
  add("accepted", "extra claims, jti and iat now", token(header(), claims({ jti: "j-1", iat: nowSec, role: "x", nested: { a: [1] } })));
  add("accepted", "iat in the future (jose checks iat only with maxTokenAge)", token(header(), claims({ iat: nowSec + 86_400 })));
  add("accepted", "nbf in the past", token(header(), claims({ nbf: nowSec - 600 })));
  add("accepted", "nbf within the clock tolerance", token(header(), claims({ nbf: nowSec + 2 })));
  add("accepted", "exp within the clock tolerance", token(header(), claims({ exp: nowSec - 2 })));
  add("accepted", "exp of 1e400 (Infinity once parsed)", token(header(), `{"sub":"u1","exp":1e400,"iss":"${ISSUER}","aud":"${AUDIENCE}"${kindJson}}`));
  add("accepted", "a fractional exp", token(header(), claims({ exp: nowSec + 600.5 })));
  add("accepted", "aud as an array holding ours", token(header(), claims({ aud: ["other", AUDIENCE] })));
  add("accepted", "typ at+jwt", token(header({ typ: "at+jwt" }), claims()));
  add("accepted", "typ of another type", token(header({ typ: 5 }), claims()));
  add("accepted", "kid of odd values (a static key ignores it)", token(header({ kid: { path: "../../etc/passwd" } }), claims()));
  add("accepted", "kid a number", token(header({ kid: 7 }), claims()));
  add("accepted", "jku/x5u/jwk headers (ignored with a static key)", token(header({ jku: "http://127.0.0.1:9/", jwk: { kty: "oct" } }), claims()));
  add("accepted", "b64:false without crit (ignored by RFC 7797)", token(header({ b64: false }), claims()));
  add("accepted", "a duplicated header key, the last one valid", token(`{"alg":"none","alg":"${alg}"}`, claims()));
  add("accepted", "a duplicated sub, the last one valid", token(header(), `{"sub":"a.b","sub":"u1","exp":${nowSec + 600},"iss":"${ISSUER}","aud":"${AUDIENCE}"${kindJson}}`));
  add("accepted", "a __proto__ claim", token(header(), `{"__proto__":{"sub":"admin"},"sub":"u1","exp":${nowSec + 600},"iss":"${ISSUER}","aud":"${AUDIENCE}"${kindJson}}`));
  add("accepted", "JSON with whitespace inside the parts", token(` { "alg" : "${alg}" } `, ` ${json(claims())}\n`));

  // The token's shape.
  add("refused", "empty", "");
  add("refused", "two parts", `${h}.${p}`);
  add("refused", "four parts", `${base}.${s}`);
  add("refused", "five parts (JWE-like)", `${h}.${p}.${s}.${s}.${s}`);
  add("refused", "dots only", "..");
  add("refused", "a leading space", ` ${base}`);
  add("refused", "a trailing newline", `${base}\n`);
  add("refused", "over 16384 characters", token(header(), claims({ info: "x".repeat(13_000) })));
  add("refused", "16384 characters of garbage", "a".repeat(16_385));

  // Each part misspelled; header and payload re-signed so only the spelling is wrong.
  for (const [how, spelled] of misspellings(h)) add("refused", `header with ${how}`, signedParts(spelled, p));
  for (const [how, spelled] of misspellings(p)) add("refused", `payload with ${how}`, signedParts(h, spelled));
  for (const [how, spelled] of misspellings(s)) add("refused", `signature with ${how}`, `${h}.${p}.${spelled}`);
  add("refused", "empty header", signedParts("", p));
  add("refused", "empty payload", signedParts(h, ""));
  add("refused", "empty signature", `${h}.${p}.`);

  // The header.
  add("refused", "header not JSON", token("{alg", claims()));
  add("refused", "header a string", token(`"${alg}"`, claims()));
  add("refused", "header a number", token("1", claims()));
  add("refused", "header null", token("null", claims()));
  add("refused", "header an array", token([{ alg }], claims()));
  add("refused", "header of invalid UTF-8", signedParts(b64(Buffer.concat([Buffer.from(`{"alg":"${alg}","x":"`), Buffer.from([0xff]), Buffer.from('"}')])), p));
  add("refused", "alg none, unsigned", `${b64(json({ alg: "none" }))}.${p}.`);
  add("refused", "alg none, signed", token({ alg: "none" }, claims()));
  add("refused", "alg missing", token({ typ: "JWT" }, claims()));
  add("refused", "alg empty", token({ alg: "" }, claims()));
  add("refused", "alg a number", token({ alg: 256 }, claims()));
  add("refused", "alg null", token({ alg: null }, claims()));
  add("refused", "alg lowercase", token({ alg: alg.toLowerCase() }, claims()));
  add("refused", "alg an array", token({ alg: [alg] }, claims()));
  add("refused", "alg not configured", token({ alg: alg === "HS256" ? "RS256" : "HS256" }, claims()));
  add("refused", "alg HS512", token({ alg: "HS512" }, claims()));
  add("refused", "a duplicated header key, the last one none", token(`{"alg":"${alg}","alg":"none"}`, claims()));
  add("refused", "crit [b64] with b64:false", token(header({ crit: ["b64"], b64: false }), claims()), true);
  add("refused", "crit of an unknown extension", token(header({ crit: ["exp"], exp: 1 }), claims()), true);
  add("refused", "crit empty", token(header({ crit: [] }), claims()), true);
  add("refused", "crit not an array", token(header({ crit: "b64", b64: true }), claims()), true);

  // The signature.
  add("refused", "signed with another key", signedParts(h, p, kit.signWithOtherKey));
  add("refused", "another payload under this signature", `${h}.${b64(json(claims({ sub: "admin" })))}.${s}`);
  add("refused", "signature truncated by 4 characters", `${h}.${p}.${s.slice(0, -4)}`);
  add("refused", "signature with 3 more bytes", `${h}.${p}.${b64(Buffer.concat([Buffer.from(s, "base64url"), Buffer.from([1, 2, 3])]))}`);
  add("refused", "signature one byte short", `${h}.${p}.${b64(Buffer.from(s, "base64url").subarray(1))}`);
  if (kit.signDer) add("refused", "ES256 signature DER-encoded", signedParts(h, p, kit.signDer));
  const pem = kit.options.publicKeyPem;
  if (pem !== undefined) add("refused", "HS256 with the public key PEM as the secret", signedParts(b64(json({ alg: "HS256" })), p, hmac(pem)));

  // The payload.
  for (const [what, value] of [["not JSON", "{sub"], ["a string", '"u1"'], ["a number", "42"], ["true", "true"], ["null", "null"], ["an array", [claims()]]] as const) {
    add("refused", `payload ${what}`, token(header(), value));
  }
  add("refused", "payload of invalid UTF-8", signedParts(h, b64(Buffer.concat([Buffer.from(json(claims()).slice(0, -1) + ',"x":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]))));
  for (const name of ["sub", "exp", "iss", "aud"]) add("refused", `no ${name}`, token(header(), without(name)));
  add("refused", "no sub and no exp (which is reported first)", token(header(), { iss: ISSUER, aud: AUDIENCE }));
  add("refused", "no claims at all", token(header(), {}));
  for (const sub of ["", "a.b", "x".repeat(129), "room#1", "a*", 42, null, true, ["u1"], { id: "u1" }]) {
    add("refused", `sub ${JSON.stringify(sub).slice(0, 20)}`, token(header(), claims({ sub })));
  }
  for (const claim of ["exp", "nbf", "iat"]) {
    for (const value of [String(nowSec + 600), true, null, [nowSec + 600], {}, "NaN"]) {
      add("refused", `${claim} ${JSON.stringify(value)}`, token(header(), claims({ [claim]: value })));
    }
  }
  add("refused", "exp in the past", token(header(), claims({ exp: nowSec - 60 })));
  add("refused", "exp of 0", token(header(), claims({ exp: 0 })));
  add("refused", "exp negative", token(header(), claims({ exp: -1 })));
  add("refused", "nbf in the future", token(header(), claims({ nbf: nowSec + 600 })));
  add("refused", "a duplicated exp, the last one a string", token(header(), `{"sub":"u1","exp":${nowSec + 600},"exp":"x","iss":"${ISSUER}","aud":"${AUDIENCE}"${kindJson}}`));
  for (const iss of ["someone-else", "", 1, null, [ISSUER]]) add("refused", `iss ${JSON.stringify(iss)}`, token(header(), claims({ iss })));
  for (const aud of ["others", "", 1, null, [], ["others"], { aud: AUDIENCE }]) add("refused", `aud ${JSON.stringify(aud)}`, token(header(), claims({ aud })));
  if (kind === "connection") {
    add("accepted", "channels and info", token(header(), claims({ channels: ["room:*", "user:u1"], info: { name: "Ada" } })));
    for (const channels of ["room:*", [1], null, {}, Array.from({ length: 257 }, (_, i) => `room:${i}`), ["r".repeat(201)]]) {
      add("refused", `channels ${JSON.stringify(channels).slice(0, 24)}`, token(header(), claims({ channels })));
    }
    add("refused", "info over 1024 bytes", token(header(), claims({ info: { bio: "x".repeat(1_100) } })));
    // A subscription token, valid in every other way, is not a connection token: not even with an empty or null channel.
    for (const channel of [SUBSCRIPTION_CHANNEL, "", null]) add("refused", `a channel claim ${JSON.stringify(channel)}`, token(header(), claims({ channel })));
  } else {
    add("accepted", "channels and info besides channel (ignored)", token(header(), claims({ channels: ["room:*"], info: { name: "Ada" } })));
    add("accepted", "a channel of 200 characters", token(header(), claims({ channel: "c".repeat(200) })));
    // A connection token, valid in every other way, is not a subscription token.
    add("refused", "no channel", token(header(), without("channel")));
    add("refused", "no channel but channels (a connection token)", token(header(), { ...without("channel"), channels: [SUBSCRIPTION_CHANNEL] }));
    for (const channel of [null, 42, [SUBSCRIPTION_CHANNEL], { name: SUBSCRIPTION_CHANNEL }, "c".repeat(201)]) {
      add("refused", `channel ${JSON.stringify(channel).slice(0, 24)}`, token(header(), claims({ channel })));
    }
  }
  return cases;
}
