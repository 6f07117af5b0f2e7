import type { Config } from "../config/index.js";
import { PusherChannelNames } from "../adapters/pusher/channel-names.js";

/** The Pusher names of the configured namespaces (docs/pusher.md, "Channel names"), as every Pusher part of the node sees them. */
export function pusherChannelNames(config: Pick<Config, "namespaces" | "pusherChannelPrefixes">): PusherChannelNames {
  const policies = new Map(config.namespaces.map((policy) => [policy.name, policy]));
  return new PusherChannelNames((namespace) => policies.get(namespace), config.pusherChannelPrefixes);
}
