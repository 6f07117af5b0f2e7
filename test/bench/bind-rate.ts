import amqp from "amqplib";

/**
 * The broker's own bind rate: `node dist/test/bench/bind-rate.js [binds]
 * [channels,…]` binds `binds` distinct keys of an exclusive queue on a
 * private topic exchange, spread over each number of channels (amqplib keeps
 * one RPC in flight per channel, so channels are the pipeline depth), then
 * unbinds them. Prints binds/s and unbinds/s per channel count. Loopback
 * RabbitMQ from BENCH_RABBIT_URL (default guest@127.0.0.1); everything it
 * declares is deleted with its connection.
 */

const url = process.env.BENCH_RABBIT_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const binds = Number(process.argv[2] ?? "3000");
const channelCounts = (process.argv[3] ?? "1,8,32,128").split(",").map(Number);

const connection = await amqp.connect(url);
try {
  const setup = await connection.createChannel();
  const exchange = `bench.bind-rate.${process.pid}`;
  await setup.assertExchange(exchange, "topic", { durable: false, autoDelete: false });
  const { queue } = await setup.assertQueue("", { exclusive: true });
  for (const count of channelCounts) {
    const channels = await Promise.all(Array.from({ length: count }, () => connection.createChannel()));
    const keys = Array.from({ length: binds }, (_, i) => `user.c${count}x${i}.#`);
    const timed = async (operation: (channel: amqp.Channel, key: string) => Promise<unknown>): Promise<number> => {
      const started = performance.now();
      await Promise.all(keys.map((key, i) => operation(channels[i % count]!, key)));
      return Math.round((binds / (performance.now() - started)) * 1000);
    };
    const bindRate = await timed((channel, key) => channel.bindQueue(queue, exchange, key));
    const unbindRate = await timed((channel, key) => channel.unbindQueue(queue, exchange, key));
    process.stdout.write(`${String(count).padStart(4)} channels: ${bindRate} binds/s, ${unbindRate} unbinds/s\n`);
    await Promise.all(channels.map((channel) => channel.close()));
  }
  await setup.deleteExchange(exchange);
} finally {
  await connection.close();
}
