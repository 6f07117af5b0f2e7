import { randomBytes } from "node:crypto";
import os from "node:os";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { loadNativeUws } from "../../src/adapters/uws/load-native-uws.js";
import { printConnect, runConnect } from "./connect.js";
import { type FanoutResult, runFanout } from "./fanout.js";
import { printIdle, runIdle } from "./idle.js";
import { printIngress, runIngress } from "./ingress.js";
import { brokerPid, machineInfo } from "./machine.js";
import { parseOptions } from "./options.js";
import { runPresenceRoom } from "./presence-room.js";
import { printPresenceRoom } from "./presence-room-report.js";
import { printRecovery, runRecovery } from "./recovery.js";
import { printTable } from "./report.js";
import { type ScenarioName, type ServerContext, type ServerHandle, startAmqpUws, startGateway, startRawUws, startSeedWs } from "./servers.js";
import { round } from "./stats.js";

/**
 * Benchmark runner: `npm run bench -- [--quick] [--json FILE]`.
 * Prints numbers and writes JSON; asserts nothing. See test/bench/README.md.
 */

const options = parseOptions(process.argv.slice(2));
const { build } = loadNativeUws();
const machine = machineInfo(build);
const runId = randomBytes(4).toString("hex");
const starters: Record<ScenarioName, (context: ServerContext) => Promise<ServerHandle>> = {
  gateway: startGateway,
  rawUws: startRawUws,
  amqpUws: startAmqpUws,
  seedWs: startSeedWs,
};
const context: ServerContext = {
  runId,
  channelCount: options.fanout.channels,
  bodyBytes: options.fanout.bodyBytes,
  hardTimeoutMs: options.fanout.hardTimeoutMs,
  rabbitUrl: options.rabbitUrl,
  logDir: options.logDir,
  gatewayEnv: options.gatewayEnv,
  gatewayNodeArgs: options.gatewayNodeArgs,
  gatewayStub: options.gatewayStub,
  brokerPid: brokerPid(),
};
const log = (line: string): void => void process.stdout.write(`${line}\n`);

const { fanout } = options;
log(`bench ${runId}${options.quick ? " (quick)" : ""}: ${options.run.join(", ")}`);
log(`machine: ${machine.cpus} × ${machine.cpuModel}, node ${machine.node}, load ${machine.loadAvg1m}, uWS ${machine.uwsBuild}`);

const results: Partial<Record<ScenarioName, FanoutResult | { error: string }>> = {};
async function fanoutScenario(): Promise<void> {
  log(`\nfanout: ${fanout.clients} clients, ${fanout.channels} channels of ~${fanout.clients / fanout.channels}, ${fanout.bodyBytes}-byte events, ${fanout.procs} client processes`);
  for (const name of options.scenarios) {
    log(`\n[${name}]`);
    const started = performance.now();
    let server: ServerHandle | null = null;
    try {
      server = await starters[name](context);
      results[name] = await runFanout(server, fanout, log);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log(`  failed: ${message}`);
      results[name] = { error: message };
    } finally {
      await server?.stop();
    }
    log(`  (${Math.round((performance.now() - started) / 1000)} s)`);
  }
  printTable(results, log);
}

/** The other scenarios: each runs its baseline itself and prints its own table right after. */
const others = {
  idle: async () => {
    const result = await runIdle(context, options.idle, log);
    printIdle(result, log);
    return result;
  },
  connect: async () => {
    const result = await runConnect(context, options.connect, log);
    printConnect(result, log);
    return result;
  },
  ingress: async () => {
    const result = await runIngress(context, options.ingress, log);
    printIngress(result, log);
    return result;
  },
  recovery: async () => {
    const result = await runRecovery(context, options.recovery, log);
    printRecovery(result, log);
    return result;
  },
  presence: async () => {
    const result = await runPresenceRoom(context, options.presence, log);
    printPresenceRoom(result, log);
    return result;
  },
};
const scenarios: Record<string, unknown> = {};
let failed = false;
for (const name of options.run) {
  const started = performance.now();
  if (name === "fanout") {
    await fanoutScenario();
    scenarios.fanout = results;
    failed ||= Object.values(results).some((result) => "error" in result);
  } else {
    log(`\n[${name}]`);
    try {
      scenarios[name] = { ...(await others[name]()), loadAvg1mAfter: round(os.loadavg()[0] ?? 0, 2) };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log(`  failed: ${message}`);
      scenarios[name] = { error: message };
      failed = true;
    }
  }
  log(`  (${name}: ${Math.round((performance.now() - started) / 1000)} s)`);
}

if (options.json !== null) {
  mkdirSync(dirname(options.json), { recursive: true });
  const report = {
    runId,
    at: new Date().toISOString(),
    machine,
    config: { quick: options.quick, gatewayStub: options.gatewayStub, fanout, idle: options.idle, connect: options.connect, ingress: options.ingress, recovery: options.recovery, presence: options.presence },
    scenarios,
  };
  writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
  log(`\nwrote ${options.json}`);
}

// A failed scenario is a broken run, not a slow one: no figure is ever judged here.
process.exit(failed ? 1 : 0);
