#!/usr/bin/env node
import { ConfigError, formatEnvHelp, loadConfig } from "./config/index.js";
import { demoOrigin, formatDemoBanner, startApp } from "./app/index.js";

/** Exit codes: 0 clean stop, 1 runtime failure or forced stop, 2 bad configuration or usage. */
const USAGE = `sobranie-realtime — RabbitMQ-fed presence and notification gateway

Usage: sobranie-realtime [--help]
       npm start

Configured only through environment variables (a bad value stops the process
with one message naming every bad variable):

${formatEnvHelp()}
`;

async function main(argv: readonly string[]): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE);
    return;
  }
  if (argv.length > 0) {
    process.stderr.write(`unknown argument(s): ${argv.join(" ")}\n\n${USAGE}`);
    process.exit(2);
  }
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  const app = await startApp(config);
  if (app.demo) process.stdout.write(formatDemoBanner(app.demo, demoOrigin(config.http.host, app.port)));

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      process.stderr.write(`second ${signal}: exiting now\n`);
      process.exit(1);
    }
    const forced = setTimeout(() => {
      process.stderr.write(`shutdown took over ${config.shutdownTimeoutMs} ms: exiting now\n`);
      process.exit(1);
    }, config.shutdownTimeoutMs);
    forced.unref();
    app.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`shutdown failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
