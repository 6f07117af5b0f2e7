import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One webhook request as the receiver got it: lower-case headers and the exact body. */
export interface ReceivedWebhook {
  readonly path: string;
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly rawBody: string;
  readonly events: Array<Record<string, unknown>>;
}

/** `answer(path, HANG)`: requests to the path are recorded and never answered. */
export const HANG = 0;

/**
 * A real HTTP webhook receiver: every request is recorded with the status
 * it was answered with, per path `answer(path)` (default 200; HANG: none). `down()`
 * closes the listening socket (connection refused), `up()` listens again on
 * the same port.
 */
export class WebhookReceiver {
  readonly requests: ReceivedWebhook[] = [];
  private readonly answers = new Map<string, number>();
  private server: Server | undefined;

  private constructor(private port: number) {}

  static async start(): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver(0);
    await receiver.up();
    return receiver;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Answers requests to `path` with `status` from now on. */
  answer(path: string, status: number): void {
    this.answers.set(path, status);
  }

  /** The requests to `path` answered `status` (any status when left out). */
  to(path: string, status?: number): ReceivedWebhook[] {
    return this.requests.filter((request) => request.path === path && (status === undefined || request.status === status));
  }

  /** Every event of the 2xx-answered requests to `path`, in arrival order. */
  delivered(path: string): Array<Record<string, unknown>> {
    return this.to(path, 200).flatMap((request) => request.events);
  }

  async up(): Promise<void> {
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const rawBody = Buffer.concat(chunks).toString("utf8");
        const path = request.url ?? "/";
        const status = this.answers.get(path) ?? 200;
        let events: Array<Record<string, unknown>> = [];
        try {
          events = (JSON.parse(rawBody) as { events: Array<Record<string, unknown>> }).events;
        } catch {
          // Recorded with no events; the test sees the raw body.
        }
        this.requests.push({ path, status, headers: request.headers, rawBody, events });
        if (status !== HANG) response.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops listening and drops open connections: requests now fail to connect. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
