import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { loadUws } from "../../src/adapters/uws/load-uws.js";
import { type FanoutResult, runFanout } from "./fanout.js";
import { brokerPid, machineInfo } from "./machine.js";
import { parseOptions } from "./options.js";
import { printTable } from "./report.js";
import { type ScenarioName, type ServerContext, type ServerHandle, startGateway, startRawUws, startSeedWs } from "./servers.js";

/**
 * Benchmark runner: `npm run bench -- [--quick] [--json FILE]`.
 * Prints numbers and writes JSON; asserts nothing. See test/bench/README.md.
 */

const options = parseOptions(process.argv.slice(2));
const { build } = loadUws();
const machine = machineInfo(build);
const runId = randomBytes(4).toString("hex");
const starters: Record<ScenarioName, (context: ServerContext) => Promise<ServerHandle>> = {
  gateway: startGateway,
  rawUws: startRawUws,
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
  gatewayStub: options.gatewayStub,
  brokerPid: brokerPid(),
};
const log = (line: string): void => void process.stdout.write(`${line}\n`);

const { fanout } = options;
log(`fanout bench ${runId}${options.quick ? " (quick)" : ""}: ${fanout.clients} clients, ${fanout.channels} channels of ~${fanout.clients / fanout.channels}, ${fanout.bodyBytes}-byte events, ${fanout.procs} client processes`);
log(`machine: ${machine.cpus} × ${machine.cpuModel}, node ${machine.node}, load ${machine.loadAvg1m}, uWS ${machine.uwsBuild}`);

const results: Partial<Record<ScenarioName, FanoutResult | { error: string }>> = {};
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

if (options.json !== null) {
  mkdirSync(dirname(options.json), { recursive: true });
  const report = {
    runId,
    at: new Date().toISOString(),
    machine,
    config: { quick: options.quick, gatewayStub: options.gatewayStub, fanout },
    scenarios: { fanout: results },
  };
  writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
  log(`\nwrote ${options.json}`);
}

// A failed scenario is a broken run, not a slow one: no figure is ever judged here.
process.exit(Object.values(results).some((result) => "error" in result) ? 1 : 0);
