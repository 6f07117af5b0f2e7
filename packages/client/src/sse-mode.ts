import { baseUrl, resolveFetch } from "./options.js";
import type { ReplyFrame } from "./requests.js";
import type { ModeHost, TransportMode } from "./transport-mode.js";
import { openSse, type IncomingFrame, type Transport, type TransportHandlers } from "./transports.js";
import { RealtimeError, type ClientRequest } from "./types.js";

/**
 * The client over SSE: one stream per connection with every channel in its
 * URL, so a subscribe or an unsubscribe (and a refreshed token, fixed for a
 * stream) reopens it; the stream's Last-Event-ID carries on across reopens.
 * The server answers the stream's subscribes in URL order, as refs 1, 2, ….
 * It only receives: requests reject `unsupported`, and `read` goes over HTTP.
 */
export class SseMode implements TransportMode {
  readonly kind = "sse";
  /** The channel each subscribe ref (position from 1) of the current stream stands for. */
  private channels: string[] = [];
  private lastEventId: string | undefined;

  constructor(private readonly host: ModeHost) {}

  open(token: string, handlers: TransportHandlers): Transport | RealtimeError | undefined {
    this.channels = this.host.subscriptions.channels();
    // A stream needs channels: with none there is nothing to receive until the first subscribe.
    if (this.channels.length === 0) return undefined;
    const fetcher = resolveFetch(this.host.options);
    if (!fetcher) return new RealtimeError("unsupported", "neither WebSocket nor fetch exists in this runtime");
    const url = `${baseUrl(this.host.options, "http")}/realtime/events?channels=${encodeURIComponent(this.channels.join(","))}`;
    return openSse(fetcher.bind(globalThis), url, token, this.lastEventId, handlers);
  }

  received(frame: IncomingFrame, eventId: string | undefined): void {
    if (frame.op === "event" && eventId !== undefined) this.lastEventId = eventId;
  }

  welcomed(): void {}

  subscriptionAdded(): void {
    this.host.restart();
  }

  subscriptionRemoved(): void {
    this.host.restart();
  }

  forget(): void {}

  reply(frame: ReplyFrame, ref: number): void {
    const channel = this.channels[ref - 1];
    const sub = channel === undefined ? undefined : this.host.subscriptions.get(channel);
    if (!sub) return;
    if (frame.op === "ok") this.host.subscriptions.subscribed(sub, { recovered: frame.recovered === true, missed: Number(frame.missed ?? 0) }, this.lastEventId !== undefined);
    else this.host.subscriptions.refused(sub, new RealtimeError(frame.code, frame.message, frame.retryAfterMs));
  }

  async request(frame: ClientRequest): Promise<Record<string, unknown>> {
    if (this.host.isClosed()) throw new RealtimeError("closed", "client closed");
    throw new RealtimeError("unsupported", `${frame.op} needs the WebSocket transport (SSE only receives; publish from a backend through the HTTP API)`);
  }

  /** `POST /api/v1/notifications/read`, with the connection token. */
  async read(_channel: string, upTo: number): Promise<{ upTo: number }> {
    const fetcher = resolveFetch(this.host.options);
    if (!fetcher) throw new RealtimeError("unsupported", "no fetch in this runtime");
    const token = await this.host.token.current();
    const response = await fetcher.call(globalThis, `${baseUrl(this.host.options, "http")}/api/v1/notifications/read`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ upTo }),
    });
    const body = JSON.parse(await response.text()) as { upTo?: number; error?: { code: string; message: string } };
    if (!response.ok || body.upTo === undefined) throw new RealtimeError(body.error?.code ?? "internal", body.error?.message ?? `HTTP ${response.status}`);
    return { upTo: body.upTo };
  }

  /** A stream's token is fixed: reopen it (Last-Event-ID keeps continuity). */
  tokenRefreshed(): void {
    this.host.restart();
  }

  closedBeforeWelcome(): boolean {
    return false;
  }

  teardown(): void {}
}
