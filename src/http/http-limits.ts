import { BlockList, isIP } from "node:net";
import { KeyedTokenBuckets } from "../core/rate-limit.js";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { HttpRateLimitScope, Metrics } from "../core/ports/metrics.js";
import type { EdgeRequest } from "../core/ports/edge.js";

/** Per map: a client inventing addresses or a backend inventing users holds at most this many buckets (about 100 bytes each). */
export const MAX_TRACKED_KEYS = 100_000;

export interface HttpLimitsSettings {
  readonly user: { readonly perSec: number; readonly burst: number };
  readonly source: { readonly perSec: number; readonly burst: number };
  readonly apiKeyFailuresPerMin: number;
  readonly trustedProxies: readonly { readonly address: string; readonly prefix: number; readonly family: "ipv4" | "ipv6" }[];
}

export type LimitVerdict = { ok: true } | { ok: false; retryAfterMs: number };

/**
 * The HTTP edge's rate limits (docs/protocol.md §7.1):
 * - per client address, before a user token is verified, so a flood of bad
 *   tokens costs a map lookup, not a signature check;
 * - per user, after it verified;
 * - failed API keys per client address: past the limit that address's
 *   API-key requests are refused without comparing keys.
 * Every refusal is counted in `sobranie_http_rate_limited_total{scope}`.
 */
export class HttpLimits {
  private readonly users: KeyedTokenBuckets;
  private readonly sources: KeyedTokenBuckets;
  private readonly apiKeyFailures: KeyedTokenBuckets;
  private readonly trusted: BlockList | undefined;

  constructor(private readonly deps: { readonly settings: HttpLimitsSettings; readonly clock: Clock; readonly metrics: Metrics }) {
    const { user, source, apiKeyFailuresPerMin, trustedProxies } = deps.settings;
    this.users = new KeyedTokenBuckets({ ratePerSec: user.perSec, burst: user.burst, maxKeys: MAX_TRACKED_KEYS });
    this.sources = new KeyedTokenBuckets({ ratePerSec: source.perSec, burst: source.burst, maxKeys: MAX_TRACKED_KEYS });
    this.apiKeyFailures = new KeyedTokenBuckets({ ratePerSec: apiKeyFailuresPerMin / 60, burst: apiKeyFailuresPerMin, maxKeys: MAX_TRACKED_KEYS });
    if (trustedProxies.length > 0) {
      this.trusted = new BlockList();
      for (const range of trustedProxies) this.trusted.addSubnet(range.address, range.prefix, range.family);
    }
  }

  /**
   * The client's address: the peer's, unless the peer is a trusted proxy;
   * then the right-most X-Forwarded-For entry that is not a trusted proxy
   * (what nginx's `$proxy_add_x_forwarded_for` appended; entries to its left
   * are the client's own say). Read in the handler's own turn.
   */
  sourceOf(req: EdgeRequest): string {
    const peer = req.remoteAddress();
    if (!this.isTrusted(peer)) return peer;
    const forwarded: string[] = [];
    req.forEachHeader((name, value) => {
      if (name === "x-forwarded-for") forwarded.push(...value.split(","));
    });
    let client = peer;
    for (const entry of forwarded.map((item) => item.trim()).reverse()) {
      if (isIP(entry) === 0) break;
      client = entry;
      if (!this.isTrusted(entry)) break;
    }
    return client;
  }

  takeSource(source: string): LimitVerdict {
    return this.counted("source", this.sources.take(source, this.deps.clock.now()));
  }

  takeUser(userId: string): LimitVerdict {
    return this.counted("user", this.users.take(userId, this.deps.clock.now()));
  }

  /** Refused while `source` has used up its failed API-key attempts. */
  checkApiKeyFailures(source: string): LimitVerdict {
    return this.counted("api_key_failures", this.apiKeyFailures.peek(source, this.deps.clock.now()));
  }

  apiKeyFailed(source: string): void {
    this.apiKeyFailures.take(source, this.deps.clock.now());
  }

  /** An API key's own rate (ApiKeys.take) refused a request. */
  apiKeyRateRefused(): void {
    this.deps.metrics.httpRateLimited("api_key");
  }

  private isTrusted(address: string): boolean {
    const version = isIP(address);
    return this.trusted !== undefined && version !== 0 && this.trusted.check(address, version === 4 ? "ipv4" : "ipv6");
  }

  private counted(scope: HttpRateLimitScope, verdict: LimitVerdict): LimitVerdict {
    if (!verdict.ok) this.deps.metrics.httpRateLimited(scope);
    return verdict;
  }
}
