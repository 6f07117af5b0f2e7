/**
 * Channel grammar (docs/protocol.md §2): `namespace:id`.
 *
 * Guarantee: a parsed channel never contains `.`, `*`, `#` or whitespace, so
 * its routing-key prefix `namespace.id` can be bound on a topic exchange
 * without turning into an AMQP wildcard.
 */
export const NAMESPACE_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;
export const CHANNEL_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
/**
 * User ids (the JWT `sub`, `status` and presence entries) follow the channel-id
 * grammar: each user has a `user:<id>` channel, and ids are words of routing
 * keys (`presence.status.<id>.*`), so no dot, wildcard, NUL or space gets in.
 */
export const USER_ID_PATTERN = CHANNEL_ID_PATTERN;
export const USER_ID_RULE = "user ids are 1 to 128 characters of A-Z, a-z, 0-9, _ or -";
/** Routing-key prefixes that belong to the gateway itself, never to a namespace. */
export const RESERVED_NAMESPACES: readonly string[] = ["client", "presence"];

export interface Channel {
  readonly namespace: string;
  readonly id: string;
  /** `namespace:id`, also the uWS topic name. */
  readonly name: string;
}

export function parseChannel(text: string): Channel | undefined {
  const colon = text.indexOf(":");
  if (colon < 0) return undefined;
  const namespace = text.slice(0, colon);
  const id = text.slice(colon + 1);
  if (!NAMESPACE_PATTERN.test(namespace) || !CHANNEL_ID_PATTERN.test(id)) return undefined;
  return { namespace, id, name: text };
}

/** `room:7` → `room.7`: the routing-key prefix every event of the channel starts with. */
export function routingPrefix(channel: Pick<Channel, "namespace" | "id">): string {
  return `${channel.namespace}.${channel.id}`;
}

/**
 * `room:7` and `message.created` → `room.7.message.created`: the routing key
 * of an event, the only place one is built; `parseRoutingKey` reads it back.
 */
export function routingKey(channel: Pick<Channel, "namespace" | "id">, type: string): string {
  return `${routingPrefix(channel)}.${type}`;
}

/**
 * `room.7.message.created` → channel `room:7` and event type `message.created`.
 * Returns undefined for a key that names no valid channel or no type.
 */
export function parseRoutingKey(key: string): { channel: Channel; type: string } | undefined {
  const first = key.indexOf(".");
  const second = first < 0 ? -1 : key.indexOf(".", first + 1);
  if (second < 0 || second === key.length - 1) return undefined;
  const channel = parseChannel(`${key.slice(0, first)}:${key.slice(first + 1, second)}`);
  return channel && { channel, type: key.slice(second + 1) };
}

/** Event types appear in routing keys: dot-separated words, no wildcards. */
export const EVENT_TYPE_PATTERN = /^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$/;
