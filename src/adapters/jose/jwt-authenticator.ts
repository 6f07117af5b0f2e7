import { createHmac, createPublicKey, createSecretKey, timingSafeEqual, verify as verifySignature, type KeyObject } from "node:crypto";
import { createRemoteJWKSet, errors, importSPKI, jwtVerify, SignJWT, type CryptoKey, type JWTVerifyGetKey } from "jose";
import * as v from "valibot";
import { AuthenticationError, type Authenticator, type Principal, type SubscriptionGrant } from "../../core/ports/authenticator.js";
import { publicKeyAlgorithmOf, type PublicKeyAlgorithm } from "../../core/token-keys.js";
import { CHANNEL_ID_PATTERN } from "@sobranie/protocol/channel";
import { MAX_TOKEN_ID_CHARS } from "@sobranie/protocol/control";

export interface JwtAuthenticatorOptions {
  /** HS256 shared secret. */
  readonly secret?: string;
  /** SPKI PEM public key; RS256 for an RSA key, ES256 for a P-256 key. */
  readonly publicKeyPem?: string;
  /** Remote JWK set for RS256/ES256 keys, chosen by `kid`. */
  readonly jwksUrl?: string;
  readonly issuer?: string;
  readonly audience?: string;
  /** Allowed clock skew for `exp`/`nbf`; default 5 s. */
  readonly clockToleranceSec?: number;
}

type Algorithm = "HS256" | PublicKeyAlgorithm;

/** A PEM public key, parsed once: the algorithm its type decides, and the key node:crypto verifies with. */
interface PemKey {
  readonly algorithm: PublicKeyAlgorithm;
  readonly key: KeyObject;
}

/** Tokens arrive in URLs and `refresh` frames; nothing legitimate is this long. */
const MAX_TOKEN_CHARS = 16_384;
const MAX_INFO_BYTES = 1_024;

/**
 * The claims both kinds of token share. `sub` must be a valid channel id: it
 * becomes the id of the `user:<sub>` channel and a word of
 * `presence.status.<sub>.*` routing keys, so a dot or a wildcard in it would
 * break routing.
 */
const IdentityClaims = {
  sub: v.pipe(
    v.string('token "sub" claim must be a string'),
    v.regex(CHANNEL_ID_PATTERN, 'token "sub" claim must be 1 to 128 characters of A-Z, a-z, 0-9, "_" or "-"'),
  ),
  exp: v.number('token "exp" claim must be a number'),
  jti: v.optional(
    v.pipe(v.string('token "jti" claim must be a string'), v.maxLength(MAX_TOKEN_ID_CHARS, `token "jti" claim is over ${MAX_TOKEN_ID_CHARS} characters`)),
  ),
  iat: v.optional(v.number('token "iat" claim must be a number')),
};

const ConnectionClaimsSchema = v.object({
  ...IdentityClaims,
  channels: v.optional(
    v.pipe(
      v.array(
        v.pipe(
          v.string('token "channels" claim must hold only strings'),
          v.maxLength(200, 'token "channels" claim has an entry over 200 characters'),
        ),
        'token "channels" claim must be an array of strings',
      ),
      v.maxLength(256, 'token "channels" claim has more than 256 entries'),
    ),
  ),
  info: v.optional(
    v.pipe(
      v.unknown(),
      v.check(
        (info) => Buffer.byteLength(JSON.stringify(info) ?? "", "utf8") <= MAX_INFO_BYTES,
        `token "info" claim is over ${MAX_INFO_BYTES} bytes of JSON`,
      ),
    ),
  ),
});

/** A channel name is at most 200 characters (the `subscribe` frame's limit); the claim is compared to it exactly. */
const SubscriptionClaimsSchema = v.object({
  ...IdentityClaims,
  channel: v.pipe(v.string('token "channel" claim must be a string'), v.maxLength(200, 'token "channel" claim is over 200 characters')),
});

type TokenKind = "connection" | "subscription";

/**
 * Verifies client JWTs (docs/protocol.md §4) with whichever sources are configured:
 * HS256 with `secret`, RS256/ES256 with `publicKeyPem` or `jwksUrl`.
 * Connection tokens (`verify`) and subscription tokens (`verifySubscription`,
 * docs/protocol.md §10) pass the same checks up to their claim
 * schemas; the `channel` claim, which only a subscription token has, keeps
 * each kind out of the other's place.
 *
 * Guarantees: only the algorithms of the configured sources are accepted
 * (never `none`); an HS256 token is only ever checked against `secret`, so a
 * public key can never be misused as an HMAC secret; every failure rejects
 * with `AuthenticationError` carrying a readable message and the jose error
 * as `cause`.
 */
export class JwtAuthenticator implements Authenticator {
  private readonly algorithms: Algorithm[];
  private readonly getKey: JWTVerifyGetKey;
  private readonly issuer: string | undefined;
  private readonly audience: string | undefined;
  private readonly clockToleranceSec: number;
  /** The HS256 secret imported once: createHmac with a KeyObject skips re-importing a string key on every token (about 2–3 µs each). */
  private readonly hmacKey: KeyObject | undefined;
  /** The PEM public key for the synchronous path (RSA keys under 2,048 bits are left to jose, which refuses them). */
  private readonly pemKey: PemKey | undefined;

  constructor(options: JwtAuthenticatorOptions) {
    if (options.publicKeyPem !== undefined && options.jwksUrl !== undefined) {
      throw new TypeError("JwtAuthenticator: give publicKeyPem or jwksUrl, not both");
    }
    const secret = options.secret === undefined ? undefined : new TextEncoder().encode(options.secret);
    const pem = options.publicKeyPem === undefined ? undefined : loadPem(options.publicKeyPem);
    const jwks = options.jwksUrl === undefined ? undefined : createRemoteJWKSet(new URL(options.jwksUrl));

    this.algorithms = [
      ...(secret ? (["HS256"] as const) : []),
      ...(pem ? [pem.parsed.algorithm] : []),
      ...(jwks ? (["RS256", "ES256"] as const) : []),
    ];
    if (this.algorithms.length === 0) {
      throw new TypeError("JwtAuthenticator: give at least one of secret, publicKeyPem, jwksUrl");
    }
    // jose checks `alg` against `algorithms` before calling this, so the
    // header's alg is one of ours and picks its own source.
    this.getKey = async (header, token): Promise<CryptoKey | Uint8Array> => {
      if (header.alg === "HS256" && secret) return secret;
      if (pem) return pem.imported;
      if (jwks) return jwks(header, token);
      throw new errors.JOSEAlgNotAllowed(`no key for algorithm ${String(header.alg)}`);
    };
    this.issuer = options.issuer;
    this.audience = options.audience;
    this.clockToleranceSec = options.clockToleranceSec ?? 5;
    this.hmacKey = options.secret === undefined ? undefined : createSecretKey(Buffer.from(options.secret, "utf8"));
    const rsaUnder2048 = pem?.parsed.algorithm === "RS256" && (pem.parsed.key.asymmetricKeyDetails?.modulusLength ?? 0) < 2_048;
    this.pemKey = rsaUnder2048 ? undefined : pem?.parsed;
  }

  /**
   * HS256, and RS256/ES256 with the PEM key, decided synchronously with
   * node:crypto (jose has no synchronous API). Why: uWebSockets.js 20.30
   * sometimes closes a socket upgraded after an await with 1006 right after
   * `open` (seen on about one connection in forty in a tight connect loop);
   * an upgrade in the handler's own turn never is.
   *
   * Guarantee: it decides every token exactly as `verify` does, with the same
   * message (test/unit/jwt-refusals.test.ts holds both paths to one table):
   * jose's checks in jose's order — header a JSON object in strict UTF-8,
   * `alg` a non-empty string among the configured ones, the signature by the
   * key of that alg only (HS256 only the secret, the PEM only its own
   * algorithm; an HMAC compared in constant time), payload a JSON object,
   * required claims (iss, aud, exp, sub), iss/aud, `iat`/`nbf`/`exp` numbers
   * when present, nbf/exp against a whole-second clock with the tolerance —
   * then the same claims schema. What jose decides with rules not copied
   * here returns undefined and takes the asynchronous path: JWKS keys, a
   * `crit` header, an RSA key under 2,048 bits.
   */
  verifyNow(token: string): Principal | undefined {
    const payload = this.payloadNow(token);
    return payload === undefined ? undefined : toPrincipal(payload);
  }

  /** `verifySubscription` decided synchronously, by the same rules and in the same order as `verifyNow`. */
  verifySubscriptionNow(token: string): SubscriptionGrant | undefined {
    const payload = this.payloadNow(token);
    return payload === undefined ? undefined : toSubscriptionGrant(payload);
  }

  async verify(token: string): Promise<Principal> {
    return toPrincipal(await this.payload(token));
  }

  async verifySubscription(token: string): Promise<SubscriptionGrant> {
    return toSubscriptionGrant(await this.payload(token));
  }

  /** The verified payload, decided synchronously (see `verifyNow`); undefined where only jose can decide. */
  private payloadNow(token: string): Record<string, unknown> | undefined {
    if (this.hmacKey === undefined && this.pemKey === undefined) return undefined;
    assertCompactForm(token);
    const [headerPart, payloadPart, signaturePart] = token.split(".") as [string, string, string];
    const header = parseJsonObject(headerPart);
    if (header === undefined) throw new AuthenticationError("token is malformed");
    if (header.crit !== undefined) return undefined;
    const alg = header.alg;
    if (typeof alg !== "string" || alg === "") throw new AuthenticationError("token is malformed");
    if (!(this.algorithms as readonly string[]).includes(alg)) throw new AuthenticationError(algorithmNotAccepted(this.algorithms));
    const signingInput = `${headerPart}.${payloadPart}`;
    const presented = Buffer.from(signaturePart, "base64url");
    if (alg === "HS256" && this.hmacKey !== undefined) {
      const expected = createHmac("sha256", this.hmacKey).update(signingInput).digest();
      if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) throw new AuthenticationError("token signature is invalid");
    } else if (this.pemKey !== undefined && alg === this.pemKey.algorithm) {
      if (!publicKeySignatureValid(this.pemKey, signingInput, presented)) throw new AuthenticationError("token signature is invalid");
    } else {
      return undefined;
    }
    const payload = parseJsonObject(payloadPart);
    if (payload === undefined) throw new AuthenticationError("token is malformed");
    this.checkClaims(payload);
    return payload;
  }

  /** jose's validateClaimsSet with our options, in its order (so the first failure reported is the same one). */
  private checkClaims(payload: Record<string, unknown>): void {
    const required = [...(this.issuer === undefined ? [] : ["iss"]), ...(this.audience === undefined ? [] : ["aud"]), "exp", "sub"];
    for (const claim of required) if (!Object.hasOwn(payload, claim)) throw new AuthenticationError(`token has no "${claim}" claim`);
    if (this.issuer !== undefined && payload.iss !== this.issuer) throw new AuthenticationError('token "iss" claim is invalid');
    if (this.audience !== undefined && !audienceMatches(payload.aud, this.audience)) throw new AuthenticationError('token "aud" claim is invalid');
    const nowSec = Math.floor(Date.now() / 1_000);
    for (const claim of ["iat", "nbf", "exp"]) {
      const value = payload[claim];
      if (value !== undefined && typeof value !== "number") throw new AuthenticationError(`token "${claim}" claim is invalid`);
    }
    if (typeof payload.nbf === "number" && payload.nbf > nowSec + this.clockToleranceSec) throw new AuthenticationError('token "nbf" claim is invalid');
    if ((payload.exp as number) <= nowSec - this.clockToleranceSec) throw new AuthenticationError("token expired");
  }

  /** The payload jose verified: signature, algorithm and the registered claims, before the claim schemas. */
  private async payload(token: string): Promise<unknown> {
    assertCompactForm(token);
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, this.getKey, {
        algorithms: this.algorithms,
        // Missing sub/exp are reported by jose before the claim schema runs.
        requiredClaims: ["sub", "exp"],
        clockTolerance: this.clockToleranceSec,
        ...(this.issuer === undefined ? {} : { issuer: this.issuer }),
        ...(this.audience === undefined ? {} : { audience: this.audience }),
      }));
    } catch (error) {
      throw new AuthenticationError(describeFailure(error, this.algorithms), { cause: error });
    }
    return payload;
  }
}

/** The connection claims schema applied to a verified payload: one mapping for both paths. */
function toPrincipal(payload: unknown): Principal {
  const claims = parseClaims(ConnectionClaimsSchema, payload, "connection");
  return {
    userId: claims.sub,
    channelPatterns: claims.channels ?? [],
    info: claims.info,
    expiresAtMs: claims.exp * 1_000,
    tokenId: claims.jti,
    issuedAtMs: claims.iat === undefined ? undefined : claims.iat * 1_000,
  };
}

/** The subscription claims schema applied to a verified payload: one mapping for both paths. */
function toSubscriptionGrant(payload: unknown): SubscriptionGrant {
  const claims = parseClaims(SubscriptionClaimsSchema, payload, "subscription");
  return {
    userId: claims.sub,
    channel: claims.channel,
    expiresAtMs: claims.exp * 1_000,
    tokenId: claims.jti,
    issuedAtMs: claims.iat === undefined ? undefined : claims.iat * 1_000,
  };
}

/** The `channel` claim tells the kinds apart: checked before the schema, so the refusal says which kind the token is. */
function parseClaims<Schema extends typeof ConnectionClaimsSchema | typeof SubscriptionClaimsSchema>(
  schema: Schema,
  payload: unknown,
  kind: TokenKind,
): v.InferOutput<Schema> {
  const hasChannel = typeof payload === "object" && payload !== null && Object.hasOwn(payload, "channel");
  if (kind === "connection" && hasChannel) throw new AuthenticationError('token has a "channel" claim: a subscription token is not a connection token');
  if (kind === "subscription" && !hasChannel) throw new AuthenticationError('token has no "channel" claim: a connection token is not a subscription token');
  const claims = v.safeParse(schema, payload);
  if (!claims.success) throw new AuthenticationError(claims.issues[0].message, { cause: new v.ValiError(claims.issues) });
  return claims.output;
}

/**
 * Three parts of canonical base64url: no padding, no whitespace, no "+/",
 * length not 4n+1, and the last character's unused bits zero. A decoder
 * (Buffer's, and the atob that jose falls back to on Node 20) skips or
 * maps all of those, so without this one token has many spellings, which
 * defeats deny-lists and log correlation. One regex test, no allocation.
 */
const COMPACT_PART = "(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048]|[A-Za-z0-9_-][AQgw])?";
const COMPACT_JWS = new RegExp(`^${COMPACT_PART}\\.${COMPACT_PART}\\.${COMPACT_PART}$`);

/** The checks both paths make before anything is decoded. */
function assertCompactForm(token: string): void {
  if (token === "") throw new AuthenticationError("token is empty");
  if (token.length > MAX_TOKEN_CHARS) throw new AuthenticationError(`token is over ${MAX_TOKEN_CHARS} characters`);
  if (!COMPACT_JWS.test(token)) throw new AuthenticationError("token is malformed");
}

/** jose decodes header and claims as strict UTF-8: a stray byte refuses the token instead of becoming U+FFFD. */
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A part's JSON when it is an object (not an array, not null), as jose requires of header and claims. */
function parseJsonObject(part: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(strictUtf8.decode(Buffer.from(part, "base64url")));
  } catch {
    return undefined;
  }
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function audienceMatches(aud: unknown, expected: string): boolean {
  return aud === expected || (Array.isArray(aud) && aud.includes(expected));
}

/**
 * The algorithm a PEM public key verifies: RS256 for RSA, ES256 for P-256;
 * undefined for anything else or a PEM that does not parse.
 */
export function publicKeyAlgorithm(pem: string): PublicKeyAlgorithm | undefined {
  return parsePem(pem)?.algorithm;
}

function parsePem(pem: string): PemKey | undefined {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: "pem" });
  } catch {
    return undefined;
  }
  const algorithm = publicKeyAlgorithmOf(key);
  return algorithm === undefined ? undefined : { algorithm, key };
}

/** RS256: RSASSA-PKCS1-v1_5 with SHA-256; ES256: ECDSA P-256 with SHA-256, the signature as r‖s (64 bytes, RFC 7518 §3.4). */
function publicKeySignatureValid(pem: PemKey, signingInput: string, signature: Buffer): boolean {
  if (pem.algorithm === "ES256" && signature.length !== 64) return false;
  try {
    const key = pem.algorithm === "ES256" ? { key: pem.key, dsaEncoding: "ieee-p1363" as const } : pem.key;
    return verifySignature("sha256", Buffer.from(signingInput, "utf8"), key, signature);
  } catch {
    return false;
  }
}

/** The PEM parsed once (its key type decides its algorithm), and the key jose verifies with (the import is async and done once). */
function loadPem(pem: string): { parsed: PemKey; imported: Promise<CryptoKey> } {
  const parsed = parsePem(pem);
  if (parsed === undefined) throw new TypeError("JwtAuthenticator: publicKeyPem must be an RSA or P-256 SPKI public key");
  const imported = importSPKI(pem, parsed.algorithm);
  // Keep an import failure from surfacing as an unhandled rejection before the
  // first verify; verify awaits the same promise and reports it.
  imported.catch(() => {});
  return { parsed, imported };
}

function algorithmNotAccepted(algorithms: readonly Algorithm[]): string {
  return `token algorithm is not accepted (accepted: ${algorithms.join(", ")})`;
}

function describeFailure(error: unknown, algorithms: readonly Algorithm[]): string {
  if (error instanceof errors.JWTExpired) return "token expired";
  if (error instanceof errors.JWSSignatureVerificationFailed) return "token signature is invalid";
  if (error instanceof errors.JOSEAlgNotAllowed) return algorithmNotAccepted(algorithms);
  if (error instanceof errors.JWTClaimValidationFailed) {
    return error.reason === "missing" ? `token has no "${error.claim}" claim` : `token "${error.claim}" claim is invalid`;
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return "token is malformed";
  if (error instanceof errors.JWKSNoMatchingKey) return "no key in the JWKS matches the token";
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid) return "the JWKS could not be loaded";
  return "token could not be verified";
}

export interface DemoTokenClaims {
  readonly sub: string;
  readonly channels?: readonly string[];
  readonly info?: unknown;
  /** Lifetime; default one hour. */
  readonly ttlSec?: number;
  readonly issuer?: string;
  readonly audience?: string;
}

/** An HS256 token that `JwtAuthenticator({ secret })` accepts: the demo token printed on embedded defaults, and test tokens. */
export async function signDemoToken(secret: string, claims: DemoTokenClaims): Promise<string> {
  const payload: Record<string, unknown> = {};
  if (claims.channels !== undefined) payload.channels = [...claims.channels];
  if (claims.info !== undefined) payload.info = claims.info;
  let jwt = new SignJWT(payload)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1_000) + (claims.ttlSec ?? 3_600));
  if (claims.issuer !== undefined) jwt = jwt.setIssuer(claims.issuer);
  if (claims.audience !== undefined) jwt = jwt.setAudience(claims.audience);
  return jwt.sign(new TextEncoder().encode(secret));
}
