/**
 * Sobranie Realtime client SDK for browsers and React Native (no Node
 * imports). Also shipped as one ESM file, `dist/client/sobranie-client.js`,
 * served by the gateway at `/client/sobranie-client.js`.
 *
 *   import { connect } from "/client/sobranie-client.js";
 *   const client = connect({ url: "https://realtime.example.com", token: () => fetchToken() });
 *   await client.subscribe("room:7", (event) => render(event));
 */
import { RealtimeClient } from "./client.js";
import type { ConnectOptions } from "./options.js";

export { RealtimeClient } from "./client.js";
export { type ConnectOptions } from "./options.js";
export { backoffDelayMs, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
export { ChannelCursor } from "./dedupe.js";
export { tokenExpiryMs, type TokenSource } from "./token.js";
export { type SubscriptionTokenSource } from "./subscription-tokens.js";
export { SseParser, type FetchLike, type WebSocketFactory, type WebSocketLike } from "./transports.js";
export * from "./types.js";

/** Connects at once (in the background) and keeps the connection up until `close()`. */
export function connect(options: ConnectOptions): RealtimeClient {
  return new RealtimeClient(options);
}
