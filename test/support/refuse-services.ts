import { ChildProcess } from "node:child_process";
import { Socket } from "node:net";

/**
 * Setup file of vitest.fast.config.ts: a test in the fast tier that reaches
 * for a service fails here, with the reason, instead of passing on a machine
 * that happens to run the service and failing (or hanging) on one that does
 * not. Connections to in-process servers on other ports stay allowed.
 */
const SERVICE_PORTS = new Map<number, string>([
  [5671, "RabbitMQ (AMQPS)"],
  [5672, "RabbitMQ"],
  [15672, "the RabbitMQ management API"],
  [15692, "RabbitMQ's Prometheus endpoint"],
  [5432, "PostgreSQL"],
]);

const MOVE_IT = "test:fast runs without services (vitest.fast.config.ts): move this test to test/integration or test/e2e";

/** The port of any `Socket.connect` call form: (port, host), (options), or net's normalized [options, callback]. */
function portOf(args: unknown[]): number {
  const first: unknown = Array.isArray(args[0]) ? args[0][0] : args[0];
  return Number(typeof first === "object" && first !== null ? (first as { port?: unknown }).port : first);
}

const connect = Socket.prototype.connect;
Socket.prototype.connect = function (this: Socket, ...args: unknown[]) {
  const service = SERVICE_PORTS.get(portOf(args));
  if (service) throw new Error(`${MOVE_IT}: it connects to ${service} (port ${portOf(args)})`);
  return (connect as (...rest: unknown[]) => Socket).apply(this, args);
} as typeof Socket.prototype.connect;

/** Node's own, undeclared: every async child_process call (spawn, exec, execFile, fork) goes through it. */
(ChildProcess.prototype as unknown as { spawn(options: { file?: string }): void }).spawn = function (options) {
  throw new Error(`${MOVE_IT}: it starts a process (${options.file ?? "?"})`);
};
