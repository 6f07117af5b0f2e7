import amqp from "amqplib";
import { AmqpNames } from "@sobranie/protocol/amqp";
import { GatewayProcess } from "./gateway-process.js";
import { TEST_JWT_SECRET } from "./test-gateway.js";

/**
 * Gateway processes tuned for presence across nodes, and what backends and
 * the HTTP API see of it. Heartbeat and TTL are small, so a node's death is
 * seen within seconds.
 */
export const PRESENCE_HEARTBEAT_MS = 300;
export const PRESENCE_TTL_MS = 1_500;
export const PRESENCE_API_KEY = "presence-gateways-api-key-0123456789";
/** How long presence may take to reach another node. Generous on a shared 2-core machine; the target is 1 s (docs/performance.md has measured numbers). */
export const ACROSS_NODES_MS = 10_000;

export interface PresenceGateway {
  readonly id: string;
  readonly process: GatewayProcess;
  readonly port: number;
  readonly wsUrl: string;
  readonly httpUrl: string;
}

/** Starts a gateway with NODE_ID `id` on RabbitMQ `url` (of `deploymentId`, or the default deployment), with `env` added; resolves once it logged `ready`. */
export async function startPresenceGateway(id: string, url: string, deploymentId?: string, env: Record<string, string> = {}): Promise<PresenceGateway> {
  const process = GatewayProcess.start([], {
    PORT: "0",
    HOST: "127.0.0.1",
    ROLE: "gateway",
    NODE_ID: id,
    ...(deploymentId === undefined ? {} : { DEPLOYMENT_ID: deploymentId }),
    RABBITMQ_URL: url,
    JWT_SECRET: TEST_JWT_SECRET,
    API_KEYS: PRESENCE_API_KEY,
    LOG_LEVEL: "info",
    HEARTBEAT_MS: String(PRESENCE_HEARTBEAT_MS),
    PRESENCE_TTL_MS: String(PRESENCE_TTL_MS),
    DRAIN_GRACE_MS: "200",
    BIND_LINGER_MS: "200",
    ...env,
  });
  const port = await process.listeningPort();
  await process.waitForOutput(/"msg":"ready"/);
  return { id, process, port, wsUrl: `ws://127.0.0.1:${port}/realtime/ws`, httpUrl: `http://127.0.0.1:${port}` };
}

/** The users `node`'s HTTP API lists as members of `channel`, sorted. */
export async function membersOn(node: PresenceGateway, channel: string): Promise<string[]> {
  const response = await fetch(`${node.httpUrl}/api/v1/presence/${channel}`, { headers: { authorization: `Bearer ${PRESENCE_API_KEY}` } });
  const body = (await response.json()) as { members: Array<{ user: string }> };
  return body.members.map((member) => member.user).sort();
}

/** Whether `node`'s HTTP API reports `user` online. */
export async function statusOn(node: PresenceGateway, user: string): Promise<boolean> {
  const response = await fetch(`${node.httpUrl}/api/v1/status?users=${user}`, { headers: { authorization: `Bearer ${PRESENCE_API_KEY}` } });
  return ((await response.json()) as { users: Array<{ online: boolean }> }).users[0]!.online;
}

/** What backends see: a private queue on `sobranie.events` bound with `presence.#`, every event in arrival order. */
export class BackendPresenceWatch {
  readonly events: Array<{ routingKey: string; body: { type: string; data: Record<string, unknown> } }> = [];
  private constructor(private readonly connection: amqp.ChannelModel) {}

  static async open(url: string): Promise<BackendPresenceWatch> {
    const connection = await amqp.connect(url);
    const watch = new BackendPresenceWatch(connection);
    const channel = await connection.createChannel();
    const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, AmqpNames.eventsExchange, "presence.#");
    await channel.consume(queue, (message) => {
      if (message) watch.events.push({ routingKey: message.fields.routingKey, body: JSON.parse(message.content.toString()) });
    }, { noAck: true });
    return watch;
  }

  /** The routing keys received that contain `filter`. */
  keys(filter: string): string[] {
    return this.events.map((event) => event.routingKey).filter((key) => key.includes(filter));
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => {});
  }
}
