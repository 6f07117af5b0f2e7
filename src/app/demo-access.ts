import type { Config } from "../config/index.js";
import { signDemoToken } from "../adapters/jose/jwt-authenticator.js";

/** One demo user's token: user `sub`, rooms `room:*`, its `info.name` shown in presence. */
export interface DemoUser {
  readonly user: string;
  readonly name: string;
  readonly token: string;
}

/**
 * What the start-up banner may print: only secrets this process made up
 * itself. `users` is empty unless the JWT secret was generated (embedded
 * defaults, no JWT key configured); `apiKey` is unset unless the API key was
 * generated (embedded defaults, no API_KEYS: it has every scope, so the demo
 * page can publish to any room). An operator's own secret or key
 * is never printed, nor put in a link.
 */
export interface DemoAccess {
  readonly users: readonly DemoUser[];
  readonly apiKey: string | undefined;
}

/** Two users, so two tabs of the demo page see each other in the presence list. */
const DEMO_USERS = [
  { user: "ada", name: "Ada" },
  { user: "grace", name: "Grace" },
] as const;

const DEMO_TOKEN_TTL_SEC = 24 * 3_600;

/**
 * Undefined when nothing was generated: the banner then prints nothing. Only
 * embedded defaults generate anything, and they always run a gateway (a
 * worker needs RABBITMQ_URL, and RABBITMQ_URL needs a JWT key).
 */
export async function demoAccess(config: Config): Promise<DemoAccess | undefined> {
  const secret = config.jwt.generated ? config.jwt.secret : undefined;
  const users = secret
    ? await Promise.all(
        DEMO_USERS.map(async ({ user, name }) => ({
          user,
          name,
          token: await signDemoToken(secret, { sub: user, channels: ["room:*"], info: { name }, ttlSec: DEMO_TOKEN_TTL_SEC }),
        })),
      )
    : [];
  const apiKey = config.apiKeysGenerated ? config.apiKeys[0]?.key : undefined;
  return users.length > 0 || apiKey !== undefined ? { users, apiKey } : undefined;
}

/** The origin a browser on this machine reaches the gateway at: `localhost` for a wildcard HOST. */
export function demoOrigin(host: string, port: number): string {
  const name = host === "0.0.0.0" || host === "::" || host === "" ? "localhost" : host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `http://${name}:${port}`;
}

/**
 * The human-readable start-up banner. Each demo page link carries the user's
 * token and the generated key in its `#fragment`, which the browser never
 * sends to the server (the page is served with `Referrer-Policy: no-referrer`).
 */
export function formatDemoBanner(access: DemoAccess, origin: string): string {
  const wsOrigin = origin.replace(/^http/, "ws");
  const lines: string[] = [""];
  const [first] = access.users;
  if (first) {
    lines.push(
      `Embedded mode: no RABBITMQ_URL, no JWT key. Demo token (user "${first.user}", rooms room:*):`,
      first.token,
      `Try: ${wsOrigin}/realtime/ws?token=<token>`,
    );
  }
  if (access.apiKey !== undefined) {
    lines.push(
      "Demo API key for POST /api/v1/publish:",
      access.apiKey,
      `Try: curl -X POST ${origin}/api/v1/publish -H "Authorization: Bearer <key>" ` +
        `-d '{"channel":"room:lobby","type":"message.created","data":{"text":"hi"}}'`,
    );
  }
  if (first) {
    lines.push(
      access.apiKey === undefined
        ? "Open the demo page, one link per tab (paste your API key to publish):"
        : "Open the demo page, one link per tab: both tabs list each other and show what either publishes:",
    );
    for (const { user, token } of access.users) {
      const fragment = new URLSearchParams(access.apiKey === undefined ? { token } : { token, key: access.apiKey });
      lines.push(`Demo page as ${user}: ${origin}/#${fragment.toString()}`);
    }
  } else {
    lines.push(`Demo page: ${origin}/ (paste a token signed with your JWT key)`);
  }
  return `${lines.join("\n")}\n\n`;
}
