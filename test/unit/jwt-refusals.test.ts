import { generateKeyPairSync, sign } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { JwtAuthenticator } from "../../src/adapters/jose/jwt-authenticator.js";
import { AuthenticationError, type Principal, type SubscriptionGrant } from "../../src/core/ports/authenticator.js";
import { signingKits, tokenCases, type TokenCase, type TokenKind } from "./jwt-refusal-table.js";

type Decision = { readonly outcome: "accepted"; readonly principal: Principal | SubscriptionGrant } | { readonly outcome: "refused"; readonly message: string };

function refusal(error: unknown): Decision {
  if (!(error instanceof AuthenticationError)) throw error;
  return { outcome: "refused", message: error.message };
}

async function decideAsync(auth: JwtAuthenticator, token: string, kind: TokenKind = "connection"): Promise<Decision> {
  const verified = kind === "connection" ? auth.verify(token) : auth.verifySubscription(token);
  return verified.then((principal): Decision => ({ outcome: "accepted", principal }), refusal);
}

function decideNow(auth: JwtAuthenticator, token: string, kind: TokenKind = "connection"): Decision | undefined {
  try {
    const principal = kind === "connection" ? auth.verifyNow(token) : auth.verifySubscriptionNow(token);
    return principal === undefined ? undefined : { outcome: "accepted", principal };
  } catch (error) {
    return refusal(error);
  }
}

const nowSec = Math.floor(Date.now() / 1_000);

// The table's times are relative to `nowSec` (an exp within the clock
// tolerance, an nbf just ahead): both paths read the clock at the moment the
// table was made, however long the run takes.
beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(nowSec * 1_000);
});
afterEach(() => {
  vi.useRealTimers();
});

// The upgrade (verifyNow) and HTTP/SSE (verify) must never disagree on a
// token: one token spelled many ways, each accepted on one path only, would
// defeat deny-lists and log correlation.
const kinds = signingKits().flatMap((kit) => (["connection", "subscription"] as const).map((kind) => ({ name: `${kit.name}, ${kind} tokens`, kit, kind })));

describe.each(kinds)("both JWT paths decide every token of the table alike: $name", ({ kit, kind }) => {
  const auth = new JwtAuthenticator(kit.options);
  const cases = tokenCases(kit, nowSec, kind);
  const otherKind: TokenKind = kind === "connection" ? "subscription" : "connection";

  it.each(cases.map((entry) => [entry.name, entry] as const))("%s", async (_name, entry: TokenCase) => {
    const later = await decideAsync(auth, entry.token, kind);
    expect(later.outcome).toBe(entry.verdict);
    const now = decideNow(auth, entry.token, kind);
    if (entry.syncDefers) expect(now).toBeUndefined();
    else expect(now).toEqual(later);
  });

  it(`refuses every token the table accepts as a ${otherKind} token, on both paths alike`, async () => {
    for (const entry of cases.filter((accepted) => accepted.verdict === "accepted")) {
      const later = await decideAsync(auth, entry.token, otherKind);
      expect(later.outcome, entry.name).toBe("refused");
      if (!entry.syncDefers) expect(decideNow(auth, entry.token, otherKind), entry.name).toEqual(later);
    }
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
    for (const kind of ["connection", "subscription"] as const) {
      for (const entry of tokenCases(kit, nowSec, kind)) {
        expect((await decideAsync(auth, entry.token, kind)).outcome, entry.name).toBe("refused");
        expect(kind === "connection" ? auth.verifyNow(entry.token) : auth.verifySubscriptionNow(entry.token), entry.name).toBeUndefined();
      }
    }
  });
});
