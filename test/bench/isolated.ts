import { execFileSync } from "node:child_process";

/**
 * A private RabbitMQ vhost and PostgreSQL database for one scenario (as
 * durable.ts does): nothing the bench declares or publishes touches other
 * work on the shared broker, and everything is dropped afterwards.
 */
export interface Isolated {
  rabbitUrl: string;
  databaseUrl: string | null;
  drop(): void;
}

export function createIsolated(name: string, withDatabase: boolean): Isolated {
  const run = (command: string, args: string[]): void => void execFileSync(command, args, { stdio: "ignore" });
  run("rabbitmqctl", ["-q", "add_vhost", name]);
  run("rabbitmqctl", ["-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"]);
  if (withDatabase) run("psql", ["-q", "-h", "127.0.0.1", "-U", "postgres", "-c", `create database ${name}`]);
  return {
    rabbitUrl: `amqp://guest:guest@127.0.0.1:5672/${name}`,
    databaseUrl: withDatabase ? `postgres://postgres@127.0.0.1:5432/${name}` : null,
    drop: () => {
      const quiet = (command: string, args: string[]): void => {
        try {
          run(command, args);
        } catch {
          // best effort: a leftover is named bench_* and harmless
        }
      };
      quiet("rabbitmqctl", ["-q", "delete_vhost", name]);
      if (withDatabase) quiet("psql", ["-q", "-h", "127.0.0.1", "-U", "postgres", "-c", `drop database if exists ${name} with (force)`]);
    },
  };
}
