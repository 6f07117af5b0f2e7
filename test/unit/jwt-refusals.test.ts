import { generateKeyPairSync, sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import { JwtAuthenticator } from "../../src/adapters/jose/jwt-authenticator.js";
import { AuthenticationError, type Principal } from "../../src/core/ports/authenticator.js";
import { signingKits, tokenCases, type TokenCase } from "./jwt-refusal-table.js";

type Decision = { readonly outcome: "accepted"; readonly principal: Principal } | { readonly outcome: "refused"; readonly message: string };

function refusal(error: unknown): Decision {
  if (!(error instanceof AuthenticationError)) throw error;
  return { outcome: "refused", message: error.message };
}

async function decideAsync(auth: JwtAuthenticator, token: string): Promise<Decision> {
  return auth.verify(token).then((principal): Decision => ({ outcome: "accepted", principal }), refusal);
}

function decideNow(auth: JwtAuthenticator, token: string): Decision | undefined {
  try {
    const principal = auth.verifyNow(token);
    return principal === undefined ? undefined : { outcome: "accepted", principal };
  } catch (error) {
    return refusal(error);
  }
}

const nowSec = Math.floor(Date.now() / 1_000);

// The upgrade (verifyNow) and HTTP/SSE (verify) must never disagree on a
// token: one token spelled many ways, each accepted on one path only, would
// defeat deny-lists and log correlation.
describe.each(signingKits())("both JWT paths decide every token of the table alike: $name", (kit) => {
  const auth = new JwtAuthenticator(kit.options);
  const cases = tokenCases(kit, nowSec);

  it.each(cases.map((entry) => [entry.name, entry] as const))("%s", async (_name, entry: TokenCase) => {
    const later = await decideAsync(auth, entry.token);
    expect(later.outcome).toBe(entry.verdict);
    const now = decideNow(auth, entry.token);
    if (entry.syncDefers) expect(now).toBeUndefined();
    else expect(now).toEqual(later);
  });

  it("holds no two cases with the same token or name", () => {
    expect(new Set(cases.map((entry) => entry.token)).size).toBe(cases.length);
    expect(new Set(cases.map((entry) => entry.name)).size).toBe(cases.length);
  });
});

describe("an RSA PEM key under 2,048 bits", () => {
  it("is refused by jose on every token, and verifyNow leaves every token to it", async () => {
    const small = generateKeyPairSync("rsa", { modulusLength: 1_024 });
    const auth = new JwtAuthenticator({ publicKeyPem: small.publicKey.export({ type: "spki", format: "pem" }).toString() });
    const kit = {
      name: "RS256 1024-bit PEM",
      alg: "RS256" as const,
      options: {},
      sign: (input: string) => sign("sha256", Buffer.from(input), small.privateKey),
      signWithOtherKey: (input: string) => sign("sha256", Buffer.from(input), generateKeyPairSync("rsa", { modulusLength: 1_024 }).privateKey),
    };
    for (const entry of tokenCases(kit, nowSec)) {
      expect((await decideAsync(auth, entry.token)).outcome, entry.name).toBe("refused");
      expect(auth.verifyNow(entry.token), entry.name).toBeUndefined();
    }
  });
});
