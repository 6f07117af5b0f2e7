#!/usr/bin/env node
import { splitBrokerUrls } from "@sobranie/protocol/broker-urls";
import { describeBrokerUrl } from "@sobranie/publisher/amqp/broker-addresses";
import { AmqpNames } from "@sobranie/protocol/amqp";
import { upgradeDeadQueue } from "./upgrade-dead-queue.js";

/**
 * `npm run upgrade-broker`: moves a classic `sobranie.dead` made by an
 * earlier version to the quorum queue this version declares, losing no dead
 * letter (upgrade-dead-queue.ts), and exits. Exit codes: 0 upgraded or
 * nothing to do, 1 failed (run it again: it resumes), 2 no RABBITMQ_URL.
 * Only the first URL of a RABBITMQ_URL list is used: every node of a
 * cluster serves the same queues. Output names the broker as host:port/vhost
 * and never carries the credentials. Like main.ts, an entry point may read
 * the environment; nothing below it does.
 */
const PREFIX = "upgrade-broker:";

async function main(): Promise<number> {
  const url = splitBrokerUrls(process.env.RABBITMQ_URL ?? "")[0];
  if (url === undefined) {
    process.stderr.write(`${PREFIX} RABBITMQ_URL is required (amqp://user:password@host:5672/vhost)\n`);
    return 2;
  }
  const target = describeBrokerUrl(url);
  process.stdout.write(`${PREFIX} ${AmqpNames.deadQueue} on ${target}\n`);
  try {
    const result = await upgradeDeadQueue(url, (line) => process.stdout.write(`${PREFIX} ${line}\n`));
    process.stdout.write(
      result.outcome === "upgraded"
        ? `${PREFIX} done: ${AmqpNames.deadQueue} on ${target} is a quorum queue; ${result.movedToTemporary} dead letter(s) moved out of the classic queue, ${result.movedToDeadQueue} moved into the quorum queue\n`
        : `${PREFIX} done: ${AmqpNames.deadQueue} on ${target} was already a quorum queue${result.movedToDeadQueue > 0 ? `; ${result.movedToDeadQueue} dead letter(s) left by an interrupted run moved into it` : ""}\n`,
    );
    return 0;
  } catch (error) {
    process.stderr.write(`${PREFIX} failed on ${target}: ${withoutSecrets(error instanceof Error ? error.message : String(error), url)}\n`);
    process.stderr.write(`${PREFIX} no dead letter was lost; fix the cause and run it again: it resumes where it stopped\n`);
    return 1;
  }
}

/** Broker and client errors do not quote the URL, but a password must not reach a log even if one did. */
function withoutSecrets(text: string, url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return text;
  }
  const secrets = [parsed.password, decodeURIComponent(parsed.password)].filter((secret) => secret !== "");
  return secrets.reduce((redacted, secret) => redacted.split(secret).join("***"), text);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${PREFIX} failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
