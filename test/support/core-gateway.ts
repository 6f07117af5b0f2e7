import type { MemoryBroker } from "../../src/adapters/memory/memory-broker.js";
import { Gateway } from "../../src/core/gateway.js";
import type { Session } from "../../src/core/session.js";
import type { GatewayDeps, GatewayOptions } from "../../src/core/gateway-options.js";
import type { IngressLimits } from "../../src/core/limits.js";
import { BUILT_IN_NAMESPACES, NamespaceRegistry } from "../../src/core/namespaces.js";
import type { Authenticator, Principal } from "../../src/core/ports/authenticator.js";
import { silentLogger } from "@sobranie/protocol/runtime/logger";
import { noopMetrics } from "../../src/core/ports/metrics.js";
import type { FakeClock } from "./fake-clock.js";
import { FakeFanout, FakeSocket } from "./fake-socket.js";

/**
 * The core Gateway on test doubles (fake clock, fake sockets, an in-memory
 * broker), with generous limits unless `options` says otherwise, for unit
 * tests of session and delivery logic. `connect` admits a user (with the
 * claims given) and opens a session on a FakeSocket.
 */
export function coreGateway(
  clock: FakeClock,
  broker: MemoryBroker,
  deps: Partial<GatewayDeps> & { bindLingerMs: number },
  options: Partial<Omit<GatewayOptions, "limits">> & { limits?: Partial<IngressLimits> } = {},
) {
  const { limits, ...overrides } = options;
  const fanout = new FakeFanout();
  const authenticator: Authenticator = { verify: () => Promise.reject(new Error("not used")), verifySubscription: () => Promise.reject(new Error("not used")) };
  let ids = 0;
  const gateway = new Gateway(
    {
      nodeId: "n1",
      heartbeatMs: 25_000,
      ttlMs: 60_000,
      recoveryLimit: 100,
      limits: {
        maxFrameBytes: 65_536,
        connectionRatePerSec: 1_000,
        connectionBurst: 1_000,
        userRatePerSec: 1_000,
        userBurst: 1_000,
        abuseCloseMs: 5_000,
        maxSubscriptions: 128,
        maxConnectionsPerUser: 16,
        maxConnections: 100,
        sendBufferBytes: 1 << 20,
        ...limits,
      },
      ...overrides,
    },
    {
      broker,
      fanout,
      authenticator,
      namespaces: new NamespaceRegistry(BUILT_IN_NAMESPACES),
      clock,
      metrics: noopMetrics,
      logger: silentLogger,
      newId: () => `id-${++ids}`,
      ...deps,
    },
  );
  const connect = (userId: string, claims: Partial<Principal> = {}) => {
    const principal: Principal = { userId, channelPatterns: [], info: undefined, expiresAtMs: clock.now() + 3_600_000, ...claims };
    const admission = gateway.admit(principal);
    if (!admission.ok) throw new Error(admission.reason);
    const socket = new FakeSocket();
    fanout.sockets.add(socket);
    return { socket, session: gateway.open(admission.ticket, socket) };
  };
  return { gateway, connect };
}

let nextRef = 0;

/**
 * Sends `frame` to a session of `connect` with a fresh `ref` and resolves
 * with the reply carrying that ref (the in-memory adapters answer within a
 * few turns of the event loop). The frame's size is its UTF-8 length.
 */
export async function request(client: { socket: FakeSocket; session: Session }, frame: Record<string, unknown>): Promise<Record<string, unknown>> {
  const ref = ++nextRef;
  const text = JSON.stringify({ ...frame, ref });
  client.session.receiveText(text, new TextEncoder().encode(text).byteLength);
  for (let turn = 0; turn < 100; turn++) {
    const reply = client.socket.sent.find((sent) => sent.ref === ref);
    if (reply) return reply;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`no reply to ${text.slice(0, 80)}`);
}
