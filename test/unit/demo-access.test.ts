import { describe, expect, it } from "vitest";
import { demoOrigin, formatDemoBanner } from "../../src/app/index.js";
import { demoAccess } from "../../src/app/demo-access.js";
import { loadConfig } from "../../src/config/index.js";
import { JwtAuthenticator } from "../../src/adapters/jose/jwt-authenticator.js";

const OPERATOR_SECRET = "the-operator-s-own-secret-of-32-characters";
const OPERATOR_KEY = "the-operator-s-own-api-key";

/** The demo page links of a banner, by user: the fragment the page reads. */
function links(banner: string): Map<string, URLSearchParams> {
  return new Map([...banner.matchAll(/^Demo page as (\S+): http:\/\/localhost:8080\/#(\S+)$/gm)].map(([, user, fragment]) => [user!, new URLSearchParams(fragment)]));
}

describe("the start-up banner's demo access", () => {
  it("on embedded defaults, prints one link per demo user with its token and the generated key in the fragment", async () => {
    const config = loadConfig({});
    const access = await demoAccess(config);
    const banner = formatDemoBanner(access!, demoOrigin(config.http.host, 8080));
    const byUser = links(banner);
    expect([...byUser.keys()]).toEqual(["ada", "grace"]);
    const auth = new JwtAuthenticator({ secret: config.jwt.secret! });
    for (const [user, fragment] of byUser) {
      expect(fragment.get("key")).toBe(config.apiKeys[0]!.key);
      await expect(auth.verify(fragment.get("token")!)).resolves.toMatchObject({ userId: user, info: { name: expect.any(String) } });
    }
    // The lines the README and the process test read: the first user's token, then the key.
    expect(banner).toMatch(new RegExp(`Demo token[^\\n]*\\n${access!.users[0]!.token}\\n`));
    expect(banner).toMatch(new RegExp(`Demo API key[^\\n]*\\n${config.apiKeys[0]!.key}\\n`));
  });

  it("never prints an operator's own JWT secret or API key, nor puts it in a link", async () => {
    const ownSecret = loadConfig({ JWT_SECRET: OPERATOR_SECRET });
    const keyOnly = formatDemoBanner((await demoAccess(ownSecret))!, "http://localhost:8080");
    expect(keyOnly).not.toContain(OPERATOR_SECRET);
    expect(keyOnly).not.toContain("Demo token");
    expect(links(keyOnly).size).toBe(0);
    expect(keyOnly).toContain(ownSecret.apiKeys[0]!.key);

    const ownKey = loadConfig({ API_KEYS: OPERATOR_KEY });
    const tokensOnly = formatDemoBanner((await demoAccess(ownKey))!, "http://localhost:8080");
    expect(tokensOnly).not.toContain(OPERATOR_KEY);
    expect([...links(tokensOnly).values()].map((fragment) => fragment.has("key"))).toEqual([false, false]);

    const configured = loadConfig({ JWT_SECRET: OPERATOR_SECRET, API_KEYS: OPERATOR_KEY });
    expect(await demoAccess(configured)).toBeUndefined();
    expect(await demoAccess(loadConfig({ RABBITMQ_URL: "amqp://127.0.0.1", JWT_SECRET: OPERATOR_SECRET }))).toBeUndefined();
  });

  it("links to localhost for a wildcard HOST and to the address itself otherwise", () => {
    expect(demoOrigin("0.0.0.0", 8080)).toBe("http://localhost:8080");
    expect(demoOrigin("::", 8080)).toBe("http://localhost:8080");
    expect(demoOrigin("127.0.0.1", 8080)).toBe("http://127.0.0.1:8080");
    expect(demoOrigin("::1", 8080)).toBe("http://[::1]:8080");
  });
});
