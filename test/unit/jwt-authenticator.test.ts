import { generateKeyPairSync, sign } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JwtAuthenticator, publicKeyAlgorithm, signDemoToken } from "../../src/adapters/jose/jwt-authenticator.js";
import { AuthenticationError } from "../../src/core/ports/authenticator.js";

const SECRET = "a-test-secret-that-is-long-enough-32";
const nowSec = () => Math.floor(Date.now() / 1_000);

async function rejection(promise: Promise<unknown>): Promise<AuthenticationError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(AuthenticationError);
  return error as AuthenticationError;
}

function hs256(payload: Record<string, unknown>, secret = SECRET): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(secret));
}

describe("JwtAuthenticator with HS256", () => {
  const auth = new JwtAuthenticator({ secret: SECRET });

  it("maps a valid token to a principal", async () => {
    const token = await signDemoToken(SECRET, { sub: "42", channels: ["room:7", "room:*"], info: { name: "Ada" }, ttlSec: 60 });
    const principal = await auth.verify(token);
    expect(principal.userId).toBe("42");
    expect(principal.channelPatterns).toEqual(["room:7", "room:*"]);
    expect(principal.info).toEqual({ name: "Ada" });
    expect(principal.expiresAtMs).toBeGreaterThan(Date.now());
    expect(principal.expiresAtMs).toBeLessThanOrEqual(Date.now() + 61_000);
  });

  it("defaults channels to none and info to undefined", async () => {
    const principal = await auth.verify(await signDemoToken(SECRET, { sub: "u-1" }));
    expect(principal.channelPatterns).toEqual([]);
    expect(principal.info).toBeUndefined();
  });

  it("reads jti as tokenId and iat as issuedAtMs, on both paths, and leaves them undefined when absent", async () => {
    const exp = nowSec() + 60;
    const token = await hs256({ sub: "42", exp, jti: "token-1", iat: exp - 100 });
    for (const principal of [await auth.verify(token), auth.verifyNow(token)]) {
      expect(principal).toMatchObject({ tokenId: "token-1", issuedAtMs: (exp - 100) * 1_000 });
    }
    const bare = await auth.verify(await hs256({ sub: "42", exp }));
    expect([bare.tokenId, bare.issuedAtMs]).toEqual([undefined, undefined]);
  });

  it("rejects a jti that is not a string of at most 256 characters, and an iat that is not a number", async () => {
    const exp = nowSec() + 60;
    expect((await rejection(auth.verify(await hs256({ sub: "42", exp, jti: 7 })))).message).toBe('token "jti" claim must be a string');
    expect((await rejection(auth.verify(await hs256({ sub: "42", exp, jti: "x".repeat(257) })))).message).toBe('token "jti" claim is over 256 characters');
    expect((await rejection(auth.verify(await hs256({ sub: "42", exp, iat: "yesterday" })))).message).toMatch(/"iat" claim/);
  });

  it("rejects a token signed with another secret", async () => {
    const token = await signDemoToken("another-secret-that-is-also-32-chars", { sub: "42" });
    const error = await rejection(auth.verify(token));
    expect(error.message).toBe("token signature is invalid");
    expect(error.cause).toBeDefined();
    expect(error.code).toBe("unauthorized");
  });

  it("rejects an expired token", async () => {
    const token = await hs256({ sub: "42", exp: nowSec() - 60 });
    expect((await rejection(auth.verify(token))).message).toBe("token expired");
  });

  it("tolerates small clock skew on exp", async () => {
    const token = await hs256({ sub: "42", exp: nowSec() - 2 });
    await expect(auth.verify(token)).resolves.toMatchObject({ userId: "42" });
  });

  it("rejects a token without sub or without exp", async () => {
    expect((await rejection(auth.verify(await hs256({ exp: nowSec() + 60 })))).message).toBe('token has no "sub" claim');
    expect((await rejection(auth.verify(await hs256({ sub: "42" })))).message).toBe('token has no "exp" claim');
  });

  it("rejects a sub that is not a valid channel id", async () => {
    for (const sub of ["", "a.b", "x".repeat(129), "room#1"]) {
      const error = await rejection(auth.verify(await hs256({ sub, exp: nowSec() + 60 })));
      expect(error.message).toContain('token "sub" claim must be 1 to 128 characters');
    }
    const numeric = await rejection(auth.verify(await hs256({ sub: 42, exp: nowSec() + 60 })));
    expect(numeric.message).toMatch(/"sub" claim/);
  });

  it("rejects oversized info and bad channels", async () => {
    const exp = nowSec() + 60;
    const big = await hs256({ sub: "42", exp, info: { bio: "x".repeat(1_100) } });
    expect((await rejection(auth.verify(big))).message).toBe('token "info" claim is over 1024 bytes of JSON');
    const tooMany = await hs256({ sub: "42", exp, channels: Array.from({ length: 257 }, (_, i) => `room:${i}`) });
    expect((await rejection(auth.verify(tooMany))).message).toBe('token "channels" claim has more than 256 entries');
    const notStrings = await hs256({ sub: "42", exp, channels: [1] });
    expect((await rejection(auth.verify(notStrings))).message).toBe('token "channels" claim must hold only strings');
    const longEntry = await hs256({ sub: "42", exp, channels: ["r".repeat(201)] });
    expect((await rejection(auth.verify(longEntry))).message).toBe('token "channels" claim has an entry over 200 characters');
  });

  it("rejects malformed, empty and overlong tokens", async () => {
    expect((await rejection(auth.verify("not.a.jwt"))).message).toBe("token is malformed");
    expect((await rejection(auth.verify(""))).message).toBe("token is empty");
    expect((await rejection(auth.verify("a".repeat(20_000)))).message).toContain("over 16384 characters");
  });

  it("rejects alg none and algorithms it was not configured for", async () => {
    const header = Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url");
    const body = Buffer.from(JSON.stringify({ sub: "42", exp: nowSec() + 60 })).toString("base64url");
    const error = await rejection(auth.verify(`${header}.${body}.`));
    expect(error.message).toBe("token algorithm is not accepted (accepted: HS256)");
    const { privateKey } = await generateKeyPair("ES256");
    const es = await new SignJWT({ sub: "42", exp: nowSec() + 60 }).setProtectedHeader({ alg: "ES256" }).sign(privateKey);
    expect((await rejection(auth.verify(es))).message).toBe("token algorithm is not accepted (accepted: HS256)");
  });

  it("checks issuer and audience when configured, and signDemoToken can set them", async () => {
    const strict = new JwtAuthenticator({ secret: SECRET, issuer: "auth", audience: "realtime" });
    await expect(strict.verify(await signDemoToken(SECRET, { sub: "42", issuer: "auth", audience: "realtime" }))).resolves.toBeDefined();
    const error = await rejection(strict.verify(await signDemoToken(SECRET, { sub: "42", issuer: "other", audience: "realtime" })));
    expect(error.message).toBe('token "iss" claim is invalid');
    expect((await rejection(strict.verify(await signDemoToken(SECRET, { sub: "42" })))).message).toBe('token has no "iss" claim');
  });

  it("refuses to be built without a key source, or with both PEM and JWKS", () => {
    expect(() => new JwtAuthenticator({})).toThrow(TypeError);
    expect(() => new JwtAuthenticator({ publicKeyPem: "x", jwksUrl: "https://a.example/jwks" })).toThrow(TypeError);
  });
});

describe("JwtAuthenticator with a PEM public key", () => {
  for (const alg of ["RS256", "ES256"] as const) {
    it(`verifies ${alg} tokens and rejects the other algorithm`, async () => {
      const { publicKey, privateKey } = await generateKeyPair(alg);
      const auth = new JwtAuthenticator({ publicKeyPem: await exportSPKI(publicKey) });
      const token = await new SignJWT({ sub: "7", exp: nowSec() + 60, channels: ["post:*"] })
        .setProtectedHeader({ alg })
        .sign(privateKey);
      await expect(auth.verify(token)).resolves.toMatchObject({ userId: "7", channelPatterns: ["post:*"] });

      const other = await generateKeyPair(alg);
      const forged = await new SignJWT({ sub: "7", exp: nowSec() + 60 }).setProtectedHeader({ alg }).sign(other.privateKey);
      expect((await rejection(auth.verify(forged))).message).toBe("token signature is invalid");
      expect((await rejection(auth.verify(await hs256({ sub: "7", exp: nowSec() + 60 })))).message).toBe(
        `token algorithm is not accepted (accepted: ${alg})`,
      );
    });
  }

  it("picks the algorithm from the key type and refuses other key types", () => {
    const spki = (pair: { publicKey: { export(options: { type: "spki"; format: "pem" }): string | Buffer } }) =>
      pair.publicKey.export({ type: "spki", format: "pem" }).toString();
    expect(publicKeyAlgorithm(spki(generateKeyPairSync("ec", { namedCurve: "P-256" })))).toBe("ES256");
    expect(publicKeyAlgorithm(spki(generateKeyPairSync("ec", { namedCurve: "P-384" })))).toBeUndefined();
    const ed25519 = spki(generateKeyPairSync("ed25519"));
    expect(publicKeyAlgorithm(ed25519)).toBeUndefined();
    expect(publicKeyAlgorithm("garbage")).toBeUndefined();
    expect(() => new JwtAuthenticator({ publicKeyPem: ed25519 })).toThrow(TypeError);
  });

  it("accepts HS256 and the PEM's algorithm together, never using the public key as an HMAC secret", async () => {
    const { publicKey } = await generateKeyPair("RS256");
    const pem = await exportSPKI(publicKey);
    const auth = new JwtAuthenticator({ secret: SECRET, publicKeyPem: pem });
    await expect(auth.verify(await signDemoToken(SECRET, { sub: "1" }))).resolves.toMatchObject({ userId: "1" });
    const confused = await hs256({ sub: "1", exp: nowSec() + 60 }, pem);
    expect((await rejection(auth.verify(confused))).message).toBe("token signature is invalid");
  });
});

describe("JwtAuthenticator with a remote JWKS", () => {
  let server: Server;
  let jwksUrl: string;
  let rsaKey: CryptoKey;
  let ecKey: CryptoKey;

  beforeAll(async () => {
    const rsa = await generateKeyPair("RS256");
    const ec = await generateKeyPair("ES256");
    rsaKey = rsa.privateKey;
    ecKey = ec.privateKey;
    const keys = [
      { ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" },
      { ...(await exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256", use: "sig" },
    ];
    server = createServer((_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  });

  it("verifies RS256 and ES256 tokens by kid", async () => {
    const auth = new JwtAuthenticator({ jwksUrl });
    const rs = await new SignJWT({ sub: "r", exp: nowSec() + 60 }).setProtectedHeader({ alg: "RS256", kid: "rsa-1" }).sign(rsaKey);
    const es = await new SignJWT({ sub: "e", exp: nowSec() + 60 }).setProtectedHeader({ alg: "ES256", kid: "ec-1" }).sign(ecKey);
    await expect(auth.verify(rs)).resolves.toMatchObject({ userId: "r" });
    await expect(auth.verify(es)).resolves.toMatchObject({ userId: "e" });
  });

  it("rejects a token whose kid is not in the set", async () => {
    const auth = new JwtAuthenticator({ jwksUrl });
    const token = await new SignJWT({ sub: "r", exp: nowSec() + 60 }).setProtectedHeader({ alg: "RS256", kid: "gone" }).sign(rsaKey);
    expect((await rejection(auth.verify(token))).message).toBe("no key in the JWKS matches the token");
  });

  it("reports an unreachable JWKS as an authentication failure with its cause", async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const auth = new JwtAuthenticator({ jwksUrl: `http://127.0.0.1:${port}/jwks.json` });
    const token = await new SignJWT({ sub: "r", exp: nowSec() + 60 }).setProtectedHeader({ alg: "RS256", kid: "rsa-1" }).sign(rsaKey);
    const error = await rejection(auth.verify(token));
    expect(error.message).toBe("token could not be verified");
    expect(error.cause).toBeDefined();
  });
});

describe("JwtAuthenticator.verifyNow (the synchronous path of the upgrade) with a secret", () => {
  const nowSec = () => Math.floor(Date.now() / 1000);
  const auth = new JwtAuthenticator({ secret: SECRET, issuer: "sobranie", audience: "clients" });
  const claims = (extra: Record<string, unknown> = {}) => ({ sub: "u1", exp: nowSec() + 60, iss: "sobranie", aud: "clients", ...extra });

  it("agrees with verify on a valid token", async () => {
    const token = await hs256(claims({ channels: ["room:*"], info: { name: "A" } }));
    expect(auth.verifyNow(token)).toEqual(await auth.verify(token));
  });

  it("refuses what verify refuses, with the same kind of error", async () => {
    const cases = [
      await hs256(claims(), "another-secret-that-is-long-enough-xx"),
      await hs256(claims({ exp: nowSec() - 60 })),
      await hs256(claims({ sub: undefined })),
      await hs256(claims({ exp: undefined })),
      await hs256(claims({ iss: "someone-else" })),
      await hs256(claims({ aud: "others" })),
      await hs256(claims({ nbf: nowSec() + 600 })),
      await hs256(claims({ sub: "a.b" })),
      await hs256(claims({ info: { pad: "x".repeat(2_000) } })),
      "not.a.jwt",
      "two.parts",
    ];
    for (const token of cases) {
      expect(() => auth.verifyNow(token), token.slice(0, 40)).toThrow(AuthenticationError);
      await expect(auth.verify(token)).rejects.toThrow(AuthenticationError);
    }
  });

  it("refuses at once, with verify's message, an algorithm not configured", async () => {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const pem = await exportSPKI(publicKey);
    const es256 = await new SignJWT({ sub: "u1" }).setProtectedHeader({ alg: "ES256" }).setExpirationTime("1h").sign(privateKey);
    // A secret only: ES256 is not configured.
    expect(() => auth.verifyNow(es256)).toThrow("token algorithm is not accepted (accepted: HS256)");
    await expect(auth.verify(es256)).rejects.toThrow("token algorithm is not accepted (accepted: HS256)");
    // A PEM only: an HS256 token (here HMAC'd with the PEM text) is never checked against the public key.
    const pemOnly = new JwtAuthenticator({ publicKeyPem: pem });
    const confused = await hs256({ sub: "u1", exp: nowSec() + 60 }, pem);
    expect(() => pemOnly.verifyNow(confused)).toThrow("token algorithm is not accepted (accepted: ES256)");
    await expect(pemOnly.verify(confused)).rejects.toThrow("token algorithm is not accepted (accepted: ES256)");
  });

  it("leaves an algorithm configured only through a JWKS to the asynchronous path", async () => {
    const { privateKey } = await generateKeyPair("ES256");
    const es256 = await new SignJWT({ sub: "u1" }).setProtectedHeader({ alg: "ES256", kid: "k" }).setExpirationTime("1h").sign(privateKey);
    const both = new JwtAuthenticator({ secret: SECRET, jwksUrl: "http://127.0.0.1:9/jwks" });
    expect(both.verifyNow(es256)).toBeUndefined();
  });

  it("leaves RSA keys under 2,048 bits to jose, which refuses them", async () => {
    const small = generateKeyPairSync("rsa", { modulusLength: 1_024 });
    const pem = small.publicKey.export({ type: "spki", format: "pem" }).toString();
    // jose refuses to sign with such a key too: signed by hand.
    const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const input = `${part({ alg: "RS256" })}.${part({ sub: "u1", exp: Math.floor(Date.now() / 1000) + 60 })}`;
    const token = `${input}.${sign("sha256", Buffer.from(input), small.privateKey).toString("base64url")}`;
    const pemOnly = new JwtAuthenticator({ publicKeyPem: pem });
    expect(pemOnly.verifyNow(token)).toBeUndefined();
    await expect(pemOnly.verify(token)).rejects.toThrow(AuthenticationError);
  });
});

describe("JwtAuthenticator.verifyNow with a PEM public key (RS256/ES256 decided in the upgrade's own turn)", () => {
  const nowSec = () => Math.floor(Date.now() / 1000);
  for (const alg of ["RS256", "ES256"] as const) {
    it(`${alg}: agrees with verify on valid tokens and on every refusal`, async () => {
      const { privateKey, publicKey } = await generateKeyPair(alg);
      const auth = new JwtAuthenticator({ secret: SECRET, publicKeyPem: await exportSPKI(publicKey), issuer: "sobranie" });
      const sign = (claims: Record<string, unknown>, key = privateKey) => new SignJWT(claims).setProtectedHeader({ alg }).sign(key);
      const claims = (extra: Record<string, unknown> = {}) => ({ sub: "u1", exp: nowSec() + 60, iss: "sobranie", ...extra });

      const valid = await sign(claims({ channels: ["room:*"], info: { name: "A" } }));
      expect(auth.verifyNow(valid)).toEqual(await auth.verify(valid));

      const [header, payload, signature] = valid.split(".") as [string, string, string];
      const otherPayload = Buffer.from(JSON.stringify(claims({ sub: "admin" }))).toString("base64url");
      const refused = [
        await sign(claims(), (await generateKeyPair(alg)).privateKey),
        `${header}.${otherPayload}.${signature}`,
        `${header}.${payload}.${signature.slice(0, -4)}`,
        `${header}.${payload}.`,
        await sign(claims({ exp: nowSec() - 60 })),
        await sign(claims({ iss: "someone-else" })),
        await sign(claims({ sub: "a.b" })),
      ];
      for (const token of refused) {
        expect(() => auth.verifyNow(token), token.slice(-20)).toThrow(AuthenticationError);
        await expect(auth.verify(token)).rejects.toThrow(AuthenticationError);
      }
    });
  }

  it("leaves JWKS keys to the asynchronous path", async () => {
    const { privateKey } = await generateKeyPair("RS256");
    const token = await new SignJWT({ sub: "u1" }).setProtectedHeader({ alg: "RS256", kid: "k" }).setExpirationTime("1h").sign(privateKey);
    expect(new JwtAuthenticator({ jwksUrl: "http://127.0.0.1:9/jwks" }).verifyNow(token)).toBeUndefined();
  });
});
