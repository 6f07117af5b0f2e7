import type { Cpu, PeerRemoval, PresenceIdle, PresenceJoin, PresenceRoomResult } from "./presence-room.js";
import { printGrid, ratio, show } from "./report.js";

/**
 * Three tables: the join (convergence, fan-out, CPU while joining), the idle
 * window against its no-presence baseline, and the two leave waves.
 */
function cpuSeconds(pct: number | null | undefined, windowMs: number): number | null {
  return pct == null ? null : Math.round((pct * windowMs) / 1000) / 100;
}

export function printPresenceRoom(r: PresenceRoomResult, log: (line: string) => void): void {
  const join = (name: string, j: PresenceJoin): string[] => [
    name,
    String(j.subscribed),
    String(j.failed),
    String(j.subscribeStormMs),
    show(j.subscribeP50Ms),
    show(j.subscribeP99Ms),
    show(j.fullOnAAfterLastOkMs),
    show(j.fullOnBAfterLastOkMs),
    show(j.joinStormMs),
    String(j.joinFrames),
    show(j.fanoutDrainedAfterLastOkMs),
    show(cpuSeconds(j.cpuPct.nodeA, j.cpuWindowMs)),
    show(cpuSeconds(j.cpuPct.nodeB, j.cpuWindowMs)),
    show(cpuSeconds(j.cpuPct.clients, j.cpuWindowMs)),
    show(j.cpuPct.others ?? null),
    `${show(j.eventLoopMaxMs.a)}/${show(j.eventLoopMaxMs.b)}`,
  ];
  printGrid(
    [
      ["presence join", "members", "failed", "subscribe storm ms", "sub p50 ms", "sub p99 ms", "full on A ms", "full on B ms", "join storm ms", "join frames", "drained ms", "A cpu-s", "B cpu-s", "clients cpu-s", "others%", "loop max ms A/B"],
      join("presence", r.presence.join),
      join("no presence", r.baseline.join),
    ],
    log,
  );
  log(
    `full on A/B and drained: after the last subscribe ok (both full ${show(r.presence.join.convergedMs)} ms after it); join storm: first subscribe → both nodes full; ` +
      `cpu-s: CPU seconds from the first subscribe until the fan-out drained (presence ${Math.round(r.presence.join.cpuWindowMs / 100) / 10} s, no presence ${Math.round(r.baseline.join.cpuWindowMs / 100) / 10} s)`,
  );
  const pj = r.presence.join;
  log(`after the join: count on A ${show(pj.countOnA)}, on B ${show(pj.countOnB)} of ${r.members}; members' closes ${JSON.stringify(pj.closes)}; subscribe failures ${JSON.stringify(pj.failures)}`);

  const both = (cpu: Cpu): number | null => (cpu.nodeA == null || cpu.nodeB == null ? null : Math.round((cpu.nodeA + cpu.nodeB) * 10) / 10);
  const idle = (name: string, i: PresenceIdle): string[] => [
    name,
    show(i.cpuPct.nodeA ?? null),
    show(i.cpuPct.nodeB ?? null),
    show(both(i.cpuPct)),
    show(i.cpuPct.clients ?? null),
    show(i.cpuPct.broker ?? null),
    show(i.cpuPct.box ?? null),
    show(i.cpuPct.others ?? null),
    String(i.open),
    Object.keys(i.closes).length === 0 ? "0" : JSON.stringify(i.closes),
    `${show(i.eventLoopMaxMs.a)}/${show(i.eventLoopMaxMs.b)}`,
  ];
  const p = r.presence.idle;
  const b = r.baseline.idle;
  printGrid(
    [
      [`idle ${Math.round(p.windowMs / 1000)} s`, "A cpu%", "B cpu%", "A+B cpu%", "clients cpu%", "broker cpu%", "box cpu%", "others%", "open", "closes", "loop max ms A/B"],
      idle("presence", p),
      idle("no presence", b),
      ["ratio", ratio(p.cpuPct.nodeA ?? null, b.cpuPct.nodeA ?? null), ratio(p.cpuPct.nodeB ?? null, b.cpuPct.nodeB ?? null), ratio(both(p.cpuPct), both(b.cpuPct)), "", "", "", "", "", "", ""],
    ],
    log,
  );
  log(`members ping every ${r.heartbeatMs} ms in both runs; counts after the window: A ${show(p.countOnA)}, B ${show(p.countOnB)} of ${r.members}`);

  const { disconnect, kill } = r.presence;
  printGrid(
    [
      ["presence leave", "members", "on A ms", "on B ms", "leave frames", "drained ms", "bound ms", "loop max ms A/B"],
      disconnect === null
        ? ["disconnect B1", "skipped: no count from node A"]
        : ["disconnect B1", String(disconnect.members), show(disconnect.onAMs), show(disconnect.onBMs), String(disconnect.leaveFrames), show(disconnect.fanoutDrainedMs), "-", `${show(disconnect.eventLoopMaxMs.a)}/${show(disconnect.eventLoopMaxMs.b)}`],
      ["kill -9 node B", String(kill.members), show(kill.onAMs), "-", String(kill.leaveFrames), show(kill.fanoutDrainedMs), `${r.ttlMs - r.heartbeatMs}..${r.ttlMs + r.heartbeatMs}`, `${show(kill.eventLoopMaxMs.a)}/-`],
    ],
    log,
  );
  log(`HEARTBEAT_MS=${r.heartbeatMs} PRESENCE_TTL_MS=${r.ttlMs}: a node silent for the TTL is dropped at the next heartbeat tick; times from the client drop / the SIGKILL to the first observer answer with the smaller count`);
  const removals = (list: PeerRemoval[]): string => (list.length === 0 ? "none" : list.map((removal) => `${removal.time.slice(11, 23)} ${removal.reason} (${removal.entries} entries)`).join(", "));
  log(`peer removals in the logs: node A ${removals(r.presence.peerRemovals.a)}; node B ${removals(r.presence.peerRemovals.b)} (only A's last "dead", after the kill, is expected)`);
  const observerCloses = r.presence.observerCloses;
  if (Object.keys(observerCloses.a).length + Object.keys(observerCloses.b).length > 0) log(`observer connections closed by the nodes (and reopened): A ${JSON.stringify(observerCloses.a)}, B ${JSON.stringify(observerCloses.b)}`);
}
