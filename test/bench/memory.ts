import { readFileSync } from "node:fs";

/** Resident set size of a process from /proc (bytes); `null` where /proc is not readable. */
export function rssBytes(pid: number): number | null {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** V8 heap used by a server: the gateway's `nodejs_heap_size_used_bytes`, or the plain server's `/memory`. */
export async function heapUsedBytes(port: number, kind: "gateway" | "plain"): Promise<number | null> {
  try {
    if (kind === "plain") {
      const body = (await (await fetch(`http://127.0.0.1:${port}/memory`)).json()) as { heapUsed: number };
      return body.heapUsed;
    }
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const match = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\d+(?:\.\d+)?(?:e\+?\d+)?)/m.exec(text);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** The open-files limit children inherit: each server-side socket is one descriptor. */
export function openFilesLimit(): number {
  try {
    const match = /Max open files\s+(\d+)/.exec(readFileSync("/proc/self/limits", "utf8"));
    return match ? Number(match[1]) : Number.POSITIVE_INFINITY;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}
