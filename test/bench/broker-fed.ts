import amqp from "amqplib";

export interface BrokerFed {
  /** Port to listen on (`PORT`). */
  port: number;
  channel: amqp.Channel;
  /** Exchange to bind the queue to (`BENCH_EXCHANGE`). */
  exchange: string;
  /** This process's exclusive, auto-deleted queue. */
  queue: string;
}

/**
 * The common start of the broker-fed baseline servers (seedWs, amqpUws),
 * which are started like the gateway: env `PORT`, `RABBITMQ_URL`,
 * `BENCH_EXCHANGE` (default `sobranie.events`; `BENCH_CREATE_EXCHANGE=1`
 * declares it, auto-delete, when no gateway has), `BENCH_HARD_TIMEOUT_MS`.
 * The process exits when its stdin closes (the runner is gone), on SIGTERM,
 * and at the hard timeout.
 */
export async function startBrokerFed(): Promise<BrokerFed> {
  const port = Number(process.env.PORT ?? "0");
  const rabbitUrl = process.env.RABBITMQ_URL ?? "amqp://guest:guest@127.0.0.1:5672";
  const exchange = process.env.BENCH_EXCHANGE ?? "sobranie.events";
  const hardTimeoutMs = Number(process.env.BENCH_HARD_TIMEOUT_MS ?? "600000");

  setTimeout(() => process.exit(2), hardTimeoutMs).unref();
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
  process.on("SIGTERM", () => process.exit(0));

  const connection = await amqp.connect(rabbitUrl);
  const channel = await connection.createChannel();
  if (process.env.BENCH_CREATE_EXCHANGE === "1") await channel.assertExchange(exchange, "topic", { durable: false, autoDelete: true });
  else await channel.checkExchange(exchange);
  const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
  return { port, channel, exchange, queue };
}
