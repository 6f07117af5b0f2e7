/**
 * Benchmark `pusher`: the Pusher endpoint (`/app/{key}`, docs/pusher.md)
 * against the native one (`/realtime/ws`) on the same gateway process, in
 * the same run, taking turns (native, Pusher, native, Pusher, … for
 * `--rounds` rounds), so both see the same machine load. Nothing here
 * asserts: it prints each round and the Pusher/native ratio, and with
 * `--json FILE` writes the numbers.
 *
 * Setup: one gateway process (ROLE=gateway, no database) on a private vhost
 * of the real RabbitMQ, with one Pusher app. Both wires carry the same
 * channels: the native client subscribes to `post:bench<i>`, the Pusher
 * client to its Pusher name `post.bench<i>` (a public channel).
 *
 * - fan-out (fanout.ts, client-process.ts): `--clients` clients over
 *   `--channels` channels, a fresh publisher per run (its own runId) sending
 *   through `sobranie.events`; delivered/s in the closed loop, p50/p99 at half
 *   of that rate;
 * - connect (connect.ts's storm, conn-process.ts, raw client): `--connect-clients`
 *   connects, each upgrading, waiting for `welcome` (native, a JWT verified)
 *   or `pusher:connection_established` (Pusher, no token: a public channel
 *   needs none), then subscribing to `post:bench0` / `post.bench0` and
 *   waiting for the answer.
 */
import { randomBytes } from "node:crypto";
import os from "node:os";
import { storm, type ConnectServerResult } from "./connect.js";
import { runFanout, type FanoutResult } from "./fanout.js";
import type { Wire } from "./ipc.js";
import { brokerPid } from "./machine.js";
import { defaultOptions } from "./options.js";
import { printGrid, ratio, show } from "./report.js";
import { gatewayRun, type ServerContext, startGatewayProcess } from "./servers.js";
import { numberOption, sh, writeJsonReport } from "./standalone.js";
import { round } from "./stats.js";

const ROUNDS = numberOption("rounds", 2);
const CLIENTS = numberOption("clients", 1_000);
const CHANNELS = numberOption("channels", 10);
const CLIENT_PROCS = numberOption("procs", 2);
const MAX_MS = numberOption("max-ms", 6_000);
const FIXED_MS = numberOption("fixed-ms", 4_000);
const CONNECT_CLIENTS = numberOption("connect-clients", 2_000);

const RUN = randomBytes(4).toString("hex");
const VHOST = `bench_pusher_${RUN}`;
const APP = { id: "bench", key: "bench-key", secret: "bench-secret-0123456789" };
const WIRES: readonly Wire[] = ["native", "pusher"];
const log = (line: string): void => void process.stdout.write(`${line}\n`);

const quick = defaultOptions(true);
const context: ServerContext = {
  runId: RUN,
  channelCount: CHANNELS,
  bodyBytes: quick.fanout.bodyBytes,
  // Every process of the run (the gateway too) ends by itself after this long, whatever happens; a round takes about a minute here.
  hardTimeoutMs: 120_000 + ROUNDS * 240_000,
  rabbitUrl: `amqp://guest:guest@127.0.0.1:5672/${VHOST}`,
  logDir: "bench-results/logs",
  gatewayEnv: {},
  gatewayNodeArgs: [],
  gatewayStub: false,
  brokerPid: brokerPid(),
};
const fanoutOptions = {
  ...quick.fanout,
  clients: CLIENTS,
  channels: CHANNELS,
  procs: CLIENT_PROCS,
  maxMs: MAX_MS,
  fixedMs: FIXED_MS,
  // The like-for-like load point is the other wire in the same round: no common phase.
  commonDeliveriesPerSec: 0,
  windowDeliveries: 20 * CLIENTS,
  hardTimeoutMs: context.hardTimeoutMs,
};
const connectOptions = { clients: CONNECT_CLIENTS, procs: 2, addressesPerProc: 4, concurrency: 50, client: "raw" as const };

interface Round {
  fanout: Partial<Record<Wire, FanoutResult>>;
  connect: Partial<Record<Wire, ConnectServerResult>>;
}

async function main(): Promise<Round[]> {
  log(`bench pusher ${RUN}: ${ROUNDS} rounds; fan-out ${CLIENTS} clients over ${CHANNELS} channels; connect storms of ${CONNECT_CLIENTS}`);
  log(`machine: ${os.cpus().length} cores, load ${round(os.loadavg()[0] ?? 0, 2)}`);
  const gateway = await startGatewayProcess(context, { PUSHER_APPS: JSON.stringify([APP]) }, "pusher");
  const urls: Record<Wire, string> = { native: gateway.wsUrl, pusher: `ws://127.0.0.1:${gateway.port}/app/${APP.key}?protocol=7&client=bench&version=1` };
  const rounds: Round[] = [];
  try {
    for (let number = 1; number <= ROUNDS; number += 1) {
      const result: Round = { fanout: {}, connect: {} };
      for (const wire of WIRES) {
        log(`\n[round ${number}, fan-out, ${wire}]`);
        const run = await gatewayRun(gateway, wire, urls[wire], { ...context, runId: `${RUN}-${number}-${wire}` });
        try {
          result.fanout[wire] = await runFanout(run, fanoutOptions, log);
        } finally {
          await run.stop();
        }
      }
      for (const wire of WIRES) {
        log(`\n[round ${number}, connect, ${wire}]`);
        const step = { client: "raw" as const, wire, expect: "welcome" as const, subscribe: "post" as const };
        const target = { wsUrl: urls[wire], jwtSecret: wire === "native" ? gateway.jwtSecret : null, pid: gateway.pid };
        result.connect[wire] = await storm(context, connectOptions, CONNECT_CLIENTS, target, step, log, wire);
        // The storm's sockets were just dropped: let the gateway close them before the next one is measured.
        await new Promise((resolve) => setTimeout(resolve, 2_000));
      }
      rounds.push(result);
    }
    const died = gateway.exitStatus();
    if (died !== null) log(`WARNING: the gateway process ${died} before the run ended; figures after that are void`);
  } finally {
    await gateway.stop();
  }
  return rounds;
}

function printRounds(rounds: Round[]): void {
  log("\nfan-out (delivered/s in the closed loop; p50/p99 ms at half of it) and connect (connects/s, p50/p99 ms), Pusher / native:");
  const rows = rounds.map((result, index) => {
    const [nf, pf, nc, pc] = [result.fanout.native, result.fanout.pusher, result.connect.native, result.connect.pusher];
    return [
      String(index + 1),
      show(nf?.deliveredPerSec ?? null),
      show(pf?.deliveredPerSec ?? null),
      ratio(pf?.deliveredPerSec ?? null, nf?.deliveredPerSec ?? null),
      `${show(nf?.p50Ms ?? null)}/${show(nf?.p99Ms ?? null)}`,
      `${show(pf?.p50Ms ?? null)}/${show(pf?.p99Ms ?? null)}`,
      `${nf?.lost ?? "-"}/${pf?.lost ?? "-"}`,
      show(nc?.connectsPerSec ?? null),
      show(pc?.connectsPerSec ?? null),
      ratio(pc?.connectsPerSec ?? null, nc?.connectsPerSec ?? null),
      `${show(nc?.p50Ms ?? null)}/${show(nc?.p99Ms ?? null)}`,
      `${show(pc?.p50Ms ?? null)}/${show(pc?.p99Ms ?? null)}`,
      `${nc?.failed ?? "-"}/${pc?.failed ?? "-"}`,
    ];
  });
  printGrid(
    [["round", "native dlv/s", "pusher dlv/s", "dlv ratio", "native p50/p99", "pusher p50/p99", "lost n/p", "native conn/s", "pusher conn/s", "conn ratio", "native p50/p99", "pusher p50/p99", "failed n/p"], ...rows],
    log,
  );
  const total = (pick: (result: Round) => number | undefined): number => rounds.reduce((sum, result) => sum + (pick(result) ?? 0), 0);
  log(
    `all rounds: fan-out ${ratio(total((r) => r.fanout.pusher?.deliveredPerSec), total((r) => r.fanout.native?.deliveredPerSec))}, ` +
      `connect ${ratio(total((r) => r.connect.pusher?.connectsPerSec), total((r) => r.connect.native?.connectsPerSec))} (Pusher / native; goal ≥ 0.9)`,
  );
}

sh("rabbitmqctl", ["-q", "add_vhost", VHOST]);
sh("rabbitmqctl", ["-q", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"]);
main()
  .then(
    (rounds) => {
      printRounds(rounds);
      writeJsonReport({ runId: RUN, at: new Date().toISOString(), config: { rounds: ROUNDS, fanout: fanoutOptions, connect: connectOptions }, rounds });
      return 0;
    },
    (error: unknown) => {
      log(`failed: ${error instanceof Error ? error.message : String(error)}`);
      return 1;
    },
  )
  .then((code) => {
    sh("rabbitmqctl", ["-q", "delete_vhost", VHOST]);
    // A failed run is a broken run, not a slow one: no figure is ever judged here.
    process.exit(code);
  });
