import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { RABBITMQ_URL, uniqueId } from "./test-gateway.js";

const run = promisify(execFile);

/** A RabbitMQ vhost of its own, for tests with fixed exchange names that must not meet other files' nodes. */
export interface RabbitVhost {
  readonly name: string;
  readonly url: string;
  /** Connections open in the vhost now. */
  connectionCount(): Promise<number>;
  /**
   * RabbitMQ's `max-connections` on the vhost: once `max` are open, new ones
   * are refused (open ones stay); null lifts the limit. Keeps a connection
   * closed by a test from coming back until the test lets it.
   */
  limitConnections(max: number | null): Promise<void>;
  drop(): Promise<void>;
}

export async function createRabbitVhost(prefix: string): Promise<RabbitVhost> {
  const name = uniqueId(prefix);
  await run("rabbitmqctl", ["add_vhost", name]);
  await run("rabbitmqctl", ["set_permissions", "-p", name, "guest", ".*", ".*", ".*"]);
  const url = new URL(RABBITMQ_URL);
  url.pathname = `/${encodeURIComponent(name)}`;
  return {
    name,
    url: url.toString(),
    connectionCount: async () => {
      const { stdout } = await run("rabbitmqctl", ["list_connections", "-q", "--no-table-headers", "vhost"]);
      return stdout.split("\n").filter((line) => line.trim() === name).length;
    },
    limitConnections: async (max) => {
      if (max === null) await run("rabbitmqctl", ["clear_vhost_limits", "-p", name]);
      else await run("rabbitmqctl", ["set_vhost_limits", "-p", name, JSON.stringify({ "max-connections": max })]);
    },
    drop: async () => void (await run("rabbitmqctl", ["delete_vhost", name]).catch(() => undefined)),
  };
}

/** Closes every connection whose connection_name is `name` (as an operator or a broker restart would). */
export async function closeConnectionsNamed(name: string): Promise<number> {
  const { stdout } = await run("rabbitmqctl", ["list_connections", "-q", "--no-table-headers", "pid", "client_properties"]);
  const pids = stdout
    .split("\n")
    .filter((line) => line.includes(`{"connection_name","${name}"}`))
    .map((line) => line.split("\t")[0] ?? "");
  await Promise.all(pids.map((pid) => run("rabbitmqctl", ["close_connection", pid, "test: connection dropped"])));
  return pids.length;
}
