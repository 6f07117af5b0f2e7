import { CONNECT_PHASES, type ConnectOptions, type ConnectPhase } from "./connect.js";
import type { FanoutOptions } from "./fanout.js";
import type { IdleOptions } from "./idle.js";
import type { IngressOptions } from "./ingress.js";
import type { PresenceRoomOptions } from "./presence-room.js";
import type { RecoveryOptions } from "./recovery.js";
import type { ScenarioName } from "./servers.js";

export const BENCH_SCENARIOS = ["fanout", "idle", "connect", "ingress", "recovery", "presence"] as const;
export type BenchScenario = (typeof BENCH_SCENARIOS)[number];

export interface BenchOptions {
  quick: boolean;
  json: string | null;
  scenarios: ScenarioName[];
  gatewayStub: boolean;
  gatewayEnv: Record<string, string>;
  /** Node options for the gateway process (`--gateway-node-args`), e.g. `--cpu-prof`. */
  gatewayNodeArgs: string[];
  rabbitUrl: string;
  logDir: string;
  fanout: FanoutOptions;
  /** Which scenarios run, in this order (`--scenario`). */
  run: BenchScenario[];
  idle: IdleOptions;
  connect: ConnectOptions;
  ingress: IngressOptions;
  recovery: RecoveryOptions;
  presence: PresenceRoomOptions;
}

const ALL_SCENARIOS: ScenarioName[] = ["gateway", "rawUws", "amqpUws", "seedWs"];
/** `--quick` leaves amqpUws out (it keeps the quick run under 3 minutes; the broker's share only matters at full size). */
const QUICK_SCENARIOS: ScenarioName[] = ["gateway", "rawUws", "seedWs"];

export const USAGE = `usage: npm run bench -- [options]
  --quick                  smaller sizes, short phases: every scenario in < 3 min
  --json FILE              write machine info and results as JSON
  --scenario a,b           of ${BENCH_SCENARIOS.join(", ")} (default: all, in that order)
  --only a,b               fanout servers to run, of ${ALL_SCENARIOS.join(", ")}
                           (default: all; --quick: ${QUICK_SCENARIOS.join(", ")})
  --idle-connections N     idle: connections (quick 10,000, full 50,000; capped by the open-files limit)
  --connect-clients N      connect: clients in each storm (quick 3,000, full 10,000)
  --connect-phases a,b     connect: of ${CONNECT_PHASES.join(", ")} (default: all)
  --connect-client raw|ws  connect: the bare-TCP client (default) or the ws library
  --connect-procs N        connect: client processes (default 2), --connect-concurrency N in flight each (default 50)
  --ingress-connections N  ingress: publishing connections (quick 100, full 200), --ingress-window N in flight each
  --recovery-clients N     recovery: clients reconnecting at once (quick 1,000, full 5,000)
  --presence-members N     presence: members of the one room over two nodes (quick 2,000, full 10,000)
  --presence-idle-ms N     presence: idle CPU window (quick 5,000, full 30,000)
  --presence-heartbeat-ms N, --presence-ttl-ms N
                           presence: HEARTBEAT_MS and PRESENCE_TTL_MS of both nodes (quick 2000, 6000;
                           full 25000, 60000: the gateway's defaults)
  --gateway-stub           start the seedWs server in the gateway's place (harness check only)
  --gateway-env KEY=VALUE  extra env for the gateway (repeatable)
  --gateway-node-args "A B" node options for every gateway process, e.g.
                           "--cpu-prof --cpu-prof-dir=bench-results/prof" (profile written at its stop)
  --rabbit URL             default amqp://guest:guest@127.0.0.1:5672
  --clients N --channels N --procs N --payload-bytes N
  --window N               closed-loop deliveries in flight (default 20 per client)
  --max-ms N --fixed-ms N --fraction F (fixed-phase load as a fraction of max)
  --common-rate N          deliveries/s of the common-load latency phase, the same for
                           every scenario (default 10000; 0 skips it)`;

/** Defaults first (quick or full), then whatever the command line overrides. */
export function defaultOptions(quick: boolean): BenchOptions {
  return {
    quick,
    json: null,
    scenarios: quick ? QUICK_SCENARIOS : ALL_SCENARIOS,
    gatewayStub: false,
    gatewayEnv: {},
    gatewayNodeArgs: [],
    rabbitUrl: "amqp://guest:guest@127.0.0.1:5672",
    logDir: "bench-results/logs",
    fanout: {
      clients: quick ? 2_000 : 10_000,
      channels: quick ? 20 : 100,
      procs: 4,
      bodyBytes: 200,
      addressesPerProc: 4,
      connectConcurrency: 50,
      connectTimeoutMs: 15_000,
      warmupMs: quick ? 2_000 : 3_000,
      routeTimeoutMs: 15_000,
      maxMs: quick ? 8_000 : 15_000,
      rampMs: quick ? 2_000 : 3_000,
      // Quick: 6 s open-loop phases keep the whole `--quick` run under 3 minutes (60,000 latency samples at the common load).
      fixedMs: quick ? 6_000 : 15_000,
      fixedFraction: 0.5,
      commonDeliveriesPerSec: 10_000,
      // 20 undelivered events per client: ~7 KB per socket, far under any send-buffer limit.
      windowDeliveries: 20 * (quick ? 2_000 : 10_000),
      reportEveryMs: 20,
      hardTimeoutMs: quick ? 120_000 : 300_000,
    },
    run: [...BENCH_SCENARIOS],
    idle: { connections: quick ? 10_000 : 50_000, procs: 4, addressesPerProc: 4, settleMs: quick ? 2_000 : 4_000 },
    connect: { clients: quick ? 3_000 : 10_000, procs: 2, addressesPerProc: 4, concurrency: 50, phases: [...CONNECT_PHASES], client: "raw" },
    ingress: { connections: quick ? 100 : 200, procs: 2, window: 4, dataBytes: 200, durationMs: quick ? 6_000 : 15_000, rampMs: quick ? 1_500 : 3_000 },
    recovery: { clients: quick ? 1_000 : 5_000, perRoom: 20, eventsPerRoom: quick ? 10 : 20, procs: 2, timeoutMs: 60_000 },
    presence: {
      members: quick ? 2_000 : 10_000,
      concurrency: 50,
      // Full: the gateway's own defaults. Quick: short enough that kill -9 is detected within seconds
      // (at 10,000 members 2 s / 6 s does not hold: the join fan-out stalls the nodes longer than the TTL).
      heartbeatMs: quick ? 2_000 : 25_000,
      ttlMs: quick ? 6_000 : 60_000,
      // Quick: 5 s windows keep `--quick` as a whole near 3 minutes; at ~2 % of a core that is ±1 tick (±12 %) per node.
      idleMs: quick ? 5_000 : 30_000,
      // Past the throttle's 1 s flush: no frame for this long means nothing is held any more.
      quietMs: 1_200,
      pollMs: 10,
      timeoutMs: quick ? 60_000 : 240_000,
      hardTimeoutMs: quick ? 180_000 : 900_000,
    },
  };
}

export function parseOptions(argv: string[]): BenchOptions {
  const options = defaultOptions(argv.includes("--quick"));
  const fanout = options.fanout;
  let windowSet = false;
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i]!;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return next;
    };
    const count = (): number => {
      const raw = value();
      const parsed = Number(raw);
      if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`${flag} needs a positive number, got ${raw}`);
      return parsed;
    };
    switch (flag) {
      case "--quick":
        break;
      case "--json":
        options.json = value();
        break;
      case "--only":
        options.scenarios = value()
          .split(",")
          .map((name) => {
            if (!ALL_SCENARIOS.includes(name as ScenarioName)) throw new Error(`unknown scenario ${name}\n${USAGE}`);
            return name as ScenarioName;
          });
        break;
      case "--scenario":
        options.run = value()
          .split(",")
          .map((name) => {
            if (!(BENCH_SCENARIOS as readonly string[]).includes(name)) throw new Error(`unknown scenario ${name}\n${USAGE}`);
            return name as BenchScenario;
          });
        break;
      case "--idle-connections":
        options.idle.connections = Math.floor(count());
        break;
      case "--connect-clients":
        options.connect.clients = Math.floor(count());
        break;
      case "--connect-phases":
        options.connect.phases = value()
          .split(",")
          .map((name) => {
            if (!(CONNECT_PHASES as readonly string[]).includes(name)) throw new Error(`unknown connect phase ${name}\n${USAGE}`);
            return name as ConnectPhase;
          });
        break;
      case "--connect-client": {
        const client = value();
        if (client !== "raw" && client !== "ws") throw new Error(`--connect-client is raw or ws, got ${client}`);
        options.connect.client = client;
        break;
      }
      case "--connect-procs":
        options.connect.procs = Math.floor(count());
        break;
      case "--connect-concurrency":
        options.connect.concurrency = Math.floor(count());
        break;
      case "--gateway-node-args":
        options.gatewayNodeArgs = value().split(" ").filter((arg) => arg !== "");
        break;
      case "--ingress-connections":
        options.ingress.connections = Math.floor(count());
        break;
      case "--ingress-window":
        options.ingress.window = Math.floor(count());
        break;
      case "--recovery-clients":
        options.recovery.clients = Math.floor(count());
        break;
      case "--presence-members":
        options.presence.members = Math.max(4, Math.floor(count()));
        break;
      case "--presence-idle-ms":
        options.presence.idleMs = Math.floor(count());
        break;
      case "--presence-heartbeat-ms":
        options.presence.heartbeatMs = Math.floor(count());
        break;
      case "--presence-ttl-ms":
        options.presence.ttlMs = Math.floor(count());
        break;
      case "--gateway-stub":
        options.gatewayStub = true;
        break;
      case "--gateway-env": {
        const pair = value();
        const at = pair.indexOf("=");
        if (at <= 0) throw new Error(`--gateway-env needs KEY=VALUE, got ${pair}`);
        options.gatewayEnv[pair.slice(0, at)] = pair.slice(at + 1);
        break;
      }
      case "--rabbit":
        options.rabbitUrl = value();
        break;
      case "--clients":
        fanout.clients = Math.floor(count());
        if (!windowSet) fanout.windowDeliveries = 20 * fanout.clients;
        break;
      case "--channels":
        fanout.channels = Math.floor(count());
        break;
      case "--procs":
        fanout.procs = Math.floor(count());
        break;
      case "--payload-bytes":
        fanout.bodyBytes = Math.floor(count());
        break;
      case "--window":
        fanout.windowDeliveries = Math.floor(count());
        windowSet = true;
        break;
      case "--max-ms":
        fanout.maxMs = Math.floor(count());
        fanout.rampMs = Math.min(fanout.rampMs, Math.floor(fanout.maxMs / 3));
        break;
      case "--fixed-ms":
        fanout.fixedMs = Math.floor(count());
        break;
      case "--fraction":
        fanout.fixedFraction = count();
        break;
      case "--common-rate": {
        const raw = Number(value());
        if (!Number.isFinite(raw) || raw < 0) throw new Error("--common-rate needs a number ≥ 0");
        fanout.commonDeliveriesPerSec = raw;
        break;
      }
      case "--help":
      case "-h":
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${flag}\n${USAGE}`);
    }
  }
  if (fanout.channels > fanout.clients) throw new Error("--channels must not exceed --clients");
  if (options.presence.ttlMs <= options.presence.heartbeatMs) throw new Error("--presence-ttl-ms must be above --presence-heartbeat-ms (the gateway requires PRESENCE_TTL_MS > HEARTBEAT_MS)");
  return options;
}
