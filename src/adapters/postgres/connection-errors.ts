/**
 * Which failures mean "the database is not reachable" (retry later, report
 * not ready) rather than "this query is wrong" (retrying changes nothing).
 * Errors arrive from pg, knex's pool, PGlite or MikroORM, sometimes wrapped,
 * so the whole `cause` chain is inspected.
 */

/** Socket-level failures from Node and pg. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
]);

/**
 * SQLSTATEs that describe the server or the session, not the statement:
 * 57P01-57P03 shutdown / starting up, 53300 too many connections,
 * 3D000 database does not exist (yet). Class 08 is matched by prefix.
 */
const SERVER_STATES = new Set(["57P01", "57P02", "57P03", "53300", "3D000"]);

const MESSAGE_PATTERNS = [
  /connection terminated/i,
  /timeout acquiring a connection/i,
  /unable to acquire a connection/i,
  /not queryable/i,
  /pglite is closed/i,
  /connection .*(closed|ended)/i,
];

const MAX_CAUSE_DEPTH = 8;

export function isConnectionFailure(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && current instanceof Error; depth += 1) {
    if (current.name === "ConnectionException" || current.name === "KnexTimeoutError") return true;
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && (NETWORK_CODES.has(code) || SERVER_STATES.has(code) || code.startsWith("08"))) {
      return true;
    }
    if (MESSAGE_PATTERNS.some((pattern) => pattern.test(current instanceof Error ? current.message : ""))) return true;
    current = current.cause;
  }
  return false;
}

/** `postgres://user:secret@host/db` → `postgres://user:***@host/db`: safe for logs and error messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "<unparseable DATABASE_URL>";
  }
}
