import amqp from "amqplib";
import { coalesceMuxWrites } from "@sobranie/publisher/amqp/coalesce-writes";

/**
 * A/B of coalesceMuxWrites in one process: `node
 * dist/test/bench/coalesce-writes-ab.js [rounds]` publishes 30,000 300-byte
 * messages with confirms (400 in flight) to an exclusive, length-capped queue
 * on a plain and on a corked connection, alternating, and prints
 * publishes/s and this process's CPU µs per confirmed publish for each.
 */

const url = process.env.BENCH_RABBIT_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const rounds = Number(process.argv[2] ?? "4");
const messages = 30_000;
const inFlight = 400;

async function trial(corked: boolean): Promise<{ perSec: number; cpuUsPerPublish: number }> {
  const model = await amqp.connect(url);
  try {
    if (corked && !coalesceMuxWrites(model)) throw new Error("amqplib internals not as expected");
    const channel = await model.createConfirmChannel();
    const { queue } = await channel.assertQueue("", { exclusive: true, arguments: { "x-max-length": 1000 } });
    const body = Buffer.alloc(300, "x");
    const cpu = process.cpuUsage();
    const started = performance.now();
    let sent = 0;
    let confirmed = 0;
    await new Promise<void>((resolve) => {
      const publish = (): void => {
        sent += 1;
        channel.publish("", queue, body, {}, () => {
          confirmed += 1;
          if (sent < messages) publish();
          else if (confirmed === messages) resolve();
        });
      };
      for (let i = 0; i < inFlight; i += 1) publish();
    });
    const used = process.cpuUsage(cpu);
    return { perSec: Math.round((messages / (performance.now() - started)) * 1000), cpuUsPerPublish: Math.round(((used.user + used.system) / messages) * 100) / 100 };
  } finally {
    await model.close();
  }
}

for (let round = 0; round < rounds; round += 1) {
  for (const corked of [false, true]) {
    const result = await trial(corked);
    process.stdout.write(`${corked ? "corked" : "plain "}  ${result.perSec} publishes/s  ${result.cpuUsPerPublish} µs CPU per publish\n`);
  }
}
