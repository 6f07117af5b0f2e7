/**
 * Benchmark `control-reach`: how long a control command takes to reach a
 * user's clients on every node (issue 14: "within a second"), against an
 * event to the same clients through the same broker, in one run. Nothing
 * here asserts: it prints a table and, with `--json FILE`, writes the numbers.
 *
 * Setup: two gateway processes (ROLE=gateway, no database) on a private vhost
 * of the real RabbitMQ. Each of `--users` users has one WebSocket on each
 * node, subscribed to its own live channel `chat:r<i>`. Rounds run one at a
 * time, `--users` rounds per kind, through one publisher SDK:
 *
 * - `event` (the baseline): `publish("chat:r<i>")` → sobranie.events →
 *   sobranie.live → each node queue → both sockets;
 * - `unsubscribe`: `unsubscribeUser(u<i>, "chat:r<i>")` → sobranie.control →
 *   each node queue → `unsubscribed` on both sockets;
 * - `disconnect`: `disconnectUser(u<i>)` → both sockets closed 4003.
 *
 * A round's reach is the time from the call to the later of the two sockets
 * (the slower node decides "reached every node"). Send and receive happen in
 * this process, on one clock.
 */
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { createPublisher } from "@sobranie/publisher";
import { spawnTracked, stopChild } from "./children.js";
import { numberOption, sh, waitReady, writeJsonReport } from "./standalone.js";
import { LatencyHistogram, round } from "./stats.js";

const USERS = numberOption("users", 200);

const SECRET = randomBytes(24).toString("hex");
const RUN = randomBytes(4).toString("hex");
const VHOST = `bench_control_${RUN}`;
const RABBITMQ_URL = `amqp://guest:guest@127.0.0.1:5672/${VHOST}`;
const MAIN = fileURLToPath(new URL("../../src/main.js", import.meta.url));
const NAMESPACES = JSON.stringify([{ name: "chat", subscribe: "claim", publish: "none", durable: false, presence: false }]);

type Kind = "event" | "unsubscribe" | "disconnect";
const KINDS: readonly Kind[] = ["event", "unsubscribe", "disconnect"];

interface KindResult {
  rounds: number;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  /** Rounds where a socket saw nothing within 10 s. */
  missed: number;
}

function startGateway(port: number, index: number): ReturnType<typeof spawnTracked> {
  return spawnTracked(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? "",
      ROLE: "gateway",
      PORT: String(port),
      NODE_ID: `bench-control-${index}-${RUN}`,
      RABBITMQ_URL,
      JWT_SECRET: SECRET,
      NAMESPACES,
      LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
}

/** One user's socket on one node: resolves `waitFor(kind)` on the next frame or close of that kind. */
class UserSocket {
  private waiter: { kind: Kind; resolve: (at: number) => void } | undefined;

  private constructor(readonly socket: WebSocket) {
    socket.on("message", (raw) => {
      const frame = JSON.parse(String(raw)) as { op: string };
      if (frame.op === "event") this.settle("event");
      if (frame.op === "unsubscribed") this.settle("unsubscribe");
    });
    socket.on("close", (code) => {
      if (code === 4003) this.settle("disconnect");
    });
  }

  static async open(port: number, user: string, channel: string): Promise<UserSocket> {
    const token = await new SignJWT({ channels: [channel] })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(user)
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(SECRET));
    const socket = new WebSocket(`ws://127.0.0.1:${port}/realtime/ws?token=${token}`);
    await new Promise((resolve, reject) => (socket.once("open", resolve), socket.once("error", reject)));
    const subscribed = new Promise<void>((resolve) =>
      socket.on("message", (raw) => {
        const frame = JSON.parse(String(raw)) as { op: string; ref?: number };
        if (frame.op === "ok" && frame.ref === 1) resolve();
      }),
    );
    socket.send(JSON.stringify({ op: "subscribe", ref: 1, channel }));
    await subscribed;
    return new UserSocket(socket);
  }

  /** The time the next `kind` arrives, or null after 10 s. */
  waitFor(kind: Kind): Promise<number | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve(null);
      }, 10_000);
      this.waiter = {
        kind,
        resolve: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
      };
    });
  }

  private settle(kind: Kind): void {
    if (this.waiter?.kind !== kind) return;
    const { resolve } = this.waiter;
    this.waiter = undefined;
    resolve(performance.now());
  }
}

async function main(): Promise<void> {
  sh("rabbitmqctl", ["-q", "add_vhost", VHOST]);
  sh("rabbitmqctl", ["-q", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"]);
  const port = 19_000 + Math.floor(Math.random() * 1000);
  const gateways = [startGateway(port, 0), startGateway(port + 1, 1)];
  const publisher = createPublisher({ url: RABBITMQ_URL });
  const users: UserSocket[][] = [];
  try {
    await Promise.all([waitReady(port), waitReady(port + 1)]);
    for (let i = 0; i < USERS; i++) {
      users.push(await Promise.all([UserSocket.open(port, `u${i}`, `chat:r${i}`), UserSocket.open(port + 1, `u${i}`, `chat:r${i}`)]));
    }
    const commands: Record<Kind, (i: number) => Promise<unknown>> = {
      event: (i) => publisher.publish(`chat:r${i}`, "bench.tick", {}),
      unsubscribe: (i) => publisher.unsubscribeUser(`u${i}`, `chat:r${i}`),
      disconnect: (i) => publisher.disconnectUser(`u${i}`),
    };
    const results = {} as Record<Kind, KindResult>;
    for (const kind of KINDS) {
      const histogram = new LatencyHistogram();
      let missed = 0;
      let maxMs = 0;
      for (let i = 0; i < USERS; i++) {
        const arrivals = users[i]!.map((user) => user.waitFor(kind));
        const sentAt = performance.now();
        await commands[kind](i);
        const times = await Promise.all(arrivals);
        if (times.some((at) => at === null)) {
          missed += 1;
          continue;
        }
        const reach = Math.max(...(times as number[])) - sentAt;
        histogram.recordMs(reach);
        maxMs = Math.max(maxMs, reach);
      }
      results[kind] = {
        rounds: USERS,
        p50Ms: round(histogram.percentileMs(0.5)),
        p99Ms: round(histogram.percentileMs(0.99)),
        maxMs: histogram.count > 0 ? round(maxMs) : null,
        missed,
      };
    }
    console.log(`\nreach of every node (2 gateways, ${USERS} rounds each, one at a time)`);
    console.log("kind          p50 ms   p99 ms   max ms  missed");
    for (const kind of KINDS) {
      const r = results[kind];
      console.log(`${kind.padEnd(12)} ${String(r.p50Ms).padStart(7)}  ${String(r.p99Ms).padStart(7)}  ${String(r.maxMs).padStart(7)}  ${String(r.missed).padStart(6)}`);
    }
    const ratio = (kind: Kind): number | null =>
      results[kind].p99Ms !== null && results.event.p99Ms ? round(results[kind].p99Ms! / results.event.p99Ms) : null;
    console.log(`p99 against the event baseline: unsubscribe ${ratio("unsubscribe")}×, disconnect ${ratio("disconnect")}×`);
    writeJsonReport({ at: new Date().toISOString(), config: { users: USERS, gateways: 2 }, scenarios: { controlReach: results } });
  } finally {
    for (const pair of users) for (const user of pair) user.socket.terminate();
    await publisher.close().catch(() => {});
    await Promise.all(gateways.map((gateway) => stopChild(gateway)));
    sh("rabbitmqctl", ["-q", "delete_vhost", VHOST]);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
