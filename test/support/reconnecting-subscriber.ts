import WebSocket from "ws";
import { TestClient, type Closed, type Frame } from "./ws-client.js";

export interface SubscriberSession {
  readonly client: TestClient;
  /** `welcome.node`: which gateway behind the load balancer served this session. */
  readonly node: string;
  readonly subscribedWithSince: number | undefined;
  readonly ok: Frame;
  closed?: Closed;
  /** The `reconnect` frame the server sent this session, if any. */
  reconnect?: Frame;
}

/**
 * One logical client of one durable channel that behaves like the client SDK
 * but without its dedupe (so a duplicate delivery stays visible to the test):
 * on a dropped socket it reconnects with jittered backoff; on a `reconnect`
 * frame it waits `afterMs`, closes and reconnects; every new session
 * subscribes with `since` = the last seq seen. Sessions never overlap, so
 * `events` (every event frame of every session, in arrival order) is exactly
 * what the user saw.
 */
export class ReconnectingSubscriber {
  readonly sessions: SubscriberSession[] = [];
  /** Every connection attempt's client, failed subscribes included. */
  private readonly attempts: TestClient[] = [];
  readonly failedAttempts: string[] = [];
  private stopped = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private reconnecting: Promise<void> | undefined;

  constructor(
    readonly url: string,
    readonly channel: string,
    private readonly token: string,
    /** `{op: "ping"}` this often: below the gateway's PRESENCE_TTL_MS (silence closes 4008). */
    private readonly pingEveryMs = 10_000,
  ) {}

  get events(): Frame[] {
    return this.attempts.flatMap((client) => client.events(this.channel));
  }

  get lastSeq(): number | undefined {
    return this.events.at(-1)?.seq as number | undefined;
  }

  get current(): SubscriberSession | undefined {
    return this.sessions.at(-1);
  }

  /** True while the latest session is open and subscribed. */
  get connected(): boolean {
    const session = this.current;
    return session !== undefined && session.closed === undefined && session.client.socket.readyState === WebSocket.OPEN;
  }

  async start(): Promise<void> {
    await this.connectOnce();
    this.heartbeat = setInterval(() => {
      // The session closes 4008 after PRESENCE_TTL_MS of silence: ping as the SDK does.
      const session = this.current;
      if (session && !session.closed && session.client.socket.readyState === WebSocket.OPEN) session.client.send({ op: "ping" });
    }, this.pingEveryMs);
  }

  /** Stops reconnecting and closes the open session. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeat);
    await this.reconnecting;
    for (const client of this.attempts) client.close();
  }

  private async connectOnce(): Promise<void> {
    const since = this.lastSeq;
    const client = await TestClient.connect(this.url, { token: this.token });
    this.attempts.push(client);
    const welcome = client.frames.find((frame) => frame.op === "welcome")!;
    let ok: Frame;
    try {
      ok = await client.request(since === undefined ? { op: "subscribe", channel: this.channel } : { op: "subscribe", channel: this.channel, since }, 20_000);
      if (ok.op !== "ok") throw new Error(`subscribe refused: ${JSON.stringify(ok)}`);
    } catch (error) {
      client.close();
      await client.closed;
      throw error;
    }
    const session: SubscriberSession = { client, node: String(welcome.node), subscribedWithSince: since, ok };
    this.sessions.push(session);
    client.socket.on("message", (data, isBinary) => {
      if (isBinary) return;
      const frame = JSON.parse(data.toString()) as Frame;
      if (frame.op !== "reconnect" || session.reconnect) return;
      session.reconnect = frame;
      setTimeout(() => client.close(), Number(frame.afterMs ?? 0));
    });
    void client.closed.then((closed) => {
      session.closed = closed;
      if (!this.stopped) this.reconnecting = this.reconnect();
    });
  }

  private async reconnect(): Promise<void> {
    // Full jitter: 0–250 ms at first, doubling to 0–2 s.
    for (let attempt = 0; !this.stopped; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(2_000, 250 * 2 ** attempt)));
      if (this.stopped) return;
      try {
        await this.connectOnce();
        return;
      } catch (error) {
        this.failedAttempts.push(error instanceof Error ? error.message : String(error));
      }
    }
  }
}
