import { afterAll, beforeAll } from "vitest";
import { TcpProxy } from "./tcp-proxy.js";
import { startTestGateway, type TestGateway } from "./test-gateway.js";

const START_TIMEOUT_MS = 60_000;

/**
 * Registers, in the calling describe block, one TestGateway (`env` and
 * `options` as startTestGateway takes them) started before its first test and
 * stopped after its last. The returned function gives it, inside a test or hook.
 */
export function suiteGateway(env: Record<string, string> = {}, options: { embedded?: boolean } = {}): () => TestGateway {
  let gateway: TestGateway | undefined;
  beforeAll(async () => {
    gateway = await startTestGateway(env, options);
  }, START_TIMEOUT_MS);
  afterAll(async () => {
    await gateway?.stop();
  });
  return () => {
    if (!gateway) throw new Error("the suite's gateway runs only inside a test or hook");
    return gateway;
  };
}

/**
 * Like suiteGateway, with the gateway's RabbitMQ connections through a
 * TcpProxy the tests can cut, freeze or hold. After the last test whatever is
 * held is released first, so that the gateway can stop.
 */
export function suiteGatewayBehindProxy(env: Record<string, string> = {}): { gateway: () => TestGateway; proxy: () => TcpProxy } {
  let proxy: TcpProxy | undefined;
  let gateway: TestGateway | undefined;
  beforeAll(async () => {
    proxy = new TcpProxy("127.0.0.1", 5672);
    await proxy.start();
    gateway = await startTestGateway({ RABBITMQ_URL: `amqp://guest:guest@127.0.0.1:${proxy.port}`, ...env });
  }, START_TIMEOUT_MS);
  afterAll(async () => {
    proxy?.release();
    await gateway?.stop();
    await proxy?.stop();
  });
  return {
    gateway: () => {
      if (!gateway) throw new Error("the suite's gateway runs only inside a test or hook");
      return gateway;
    },
    proxy: () => {
      if (!proxy) throw new Error("the suite's proxy runs only inside a test or hook");
      return proxy;
    },
  };
}
