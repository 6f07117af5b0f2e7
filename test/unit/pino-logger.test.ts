import { describe, expect, it } from "vitest";
import { createPinoLogger } from "../../src/adapters/pino/pino-logger.js";

function capture() {
  const lines: Record<string, unknown>[] = [];
  return { lines, destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } };
}

describe("createPinoLogger", () => {
  it("writes one JSON line per call with message, fields and node id", () => {
    const { lines, destination } = capture();
    const logger = createPinoLogger({ level: "info", nodeId: "node-a", destination });
    logger.info({ port: 8080 }, "listening");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30, msg: "listening", port: 8080, nodeId: "node-a" });
    expect(typeof lines[0]?.time).toBe("string");
  });

  it("drops lines below the level and logs nothing when silent", () => {
    const { lines, destination } = capture();
    const logger = createPinoLogger({ level: "warn", nodeId: "n", destination });
    logger.debug({}, "d");
    logger.info({}, "i");
    logger.warn({}, "w");
    logger.error({}, "e");
    expect(lines.map((line) => line.msg)).toEqual(["w", "e"]);
    const silent = capture();
    createPinoLogger({ level: "silent", nodeId: "n", destination: silent.destination }).error({}, "e");
    expect(silent.lines).toEqual([]);
  });

  it("serializes errors and carries child fields", () => {
    const { lines, destination } = capture();
    const child = createPinoLogger({ level: "debug", nodeId: "n", destination }).child({ session: "s1" });
    child.error({ err: new TypeError("boom") }, "failed");
    child.child({ channel: "room:7" }).debug({ error: new Error("inner") }, "nested");
    expect(lines[0]).toMatchObject({ session: "s1", msg: "failed", err: { type: "TypeError", message: "boom" } });
    expect(lines[1]).toMatchObject({ session: "s1", channel: "room:7", error: { type: "Error", message: "inner" } });
  });
});
