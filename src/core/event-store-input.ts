import { parseChannel } from "@sobranie/protocol/channel";

/**
 * Argument rules every EventStore implementation applies the same way, so the
 * memory double and the database adapters fail on the same inputs. Bad
 * arguments are programming errors (the edge validated them): RangeError.
 */

/** The inbox of user `id` is the durable channel `user:<id>` (docs/protocol.md §2). */
export function inboxChannel(userId: string): string {
  return `user:${userId}`;
}

/** The namespace of a valid channel; throws on anything that is not `namespace:id`. */
export function namespaceOf(channel: string): string {
  const parsed = parseChannel(channel);
  if (!parsed) throw new RangeError(`not a channel: ${JSON.stringify(channel)}`);
  return parsed.namespace;
}

/** A seq argument: 0 means "from the beginning". */
export function checkSeq(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
  return value;
}

export function checkLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
  return limit;
}

/**
 * `occurredAt` as every store returns it: `Date#toISOString()` (UTC,
 * milliseconds). PostgreSQL keeps microseconds and no original spelling, so
 * the stores agree on this one form instead of echoing the input.
 */
export function normalizeOccurredAt(occurredAt: string): string {
  const ms = Date.parse(occurredAt);
  if (Number.isNaN(ms)) throw new RangeError(`occurredAt is not a date: ${JSON.stringify(occurredAt)}`);
  return new Date(ms).toISOString();
}

/**
 * A retention limit (`maxAgeMs`, `maxPerChannel`): Infinity means "no limit
 * of this kind" and comes back undefined; negative, NaN or fractional values
 * are rejected.
 */
export function retentionLimit(name: string, value: number): number | undefined {
  if (value === Number.POSITIVE_INFINITY) return undefined;
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer or Infinity, got ${value}`);
  return value;
}
