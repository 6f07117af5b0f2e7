import { readFileSync } from "node:fs";

/**
 * Top self-time functions of a V8 `.cpuprofile` (what `node --cpu-prof`
 * writes; see `--gateway-node-args`): `node dist/test/bench/prof-top.js
 * FILE [N]`. Two percentages: of all samples (so "(idle)" shows how busy
 * the process was) and of the busy ones (idle left out), which is what to
 * compare between runs. Same function in several call sites is added up by
 * name, file and line.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

const [file, topArg] = process.argv.slice(2);
const top = Number(topArg ?? "25");
if (file === undefined || !Number.isInteger(top) || top <= 0) {
  process.stderr.write("usage: node dist/test/bench/prof-top.js FILE.cpuprofile [N]\n");
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, "utf8")) as { nodes: ProfileNode[]; samples: number[] };
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const hits = new Map<string, number>();
for (const id of profile.samples) {
  const frame = byId.get(id)?.callFrame;
  if (frame === undefined) continue;
  const where = frame.url === "" ? "" : ` ${frame.url.replace(/^.*\/(node_modules|dist)\//, "$1/")}:${frame.lineNumber + 1}`;
  const key = `${frame.functionName || "(anonymous)"}${where}`;
  hits.set(key, (hits.get(key) ?? 0) + 1);
}
const total = profile.samples.length;
const busy = total - (hits.get("(idle)") ?? 0);
const rows = [...hits.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
const percent = (count: number, of: number): string => `${of === 0 ? "-" : ((100 * count) / of).toFixed(1)} %`.padStart(7);
process.stdout.write(`${total} samples, ${busy} busy\n    all    busy\n`);
for (const [key, count] of rows) process.stdout.write(`${percent(count, total)} ${key === "(idle)" ? "       " : percent(count, busy)}  ${key}\n`);
