import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { formatEnvMarkdown } from "../../src/config/index.js";

describe("README and docs", () => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const operations = readFileSync(new URL("../../docs/operations.md", import.meta.url), "utf8");

  it("opens with the two set-up commands CI runs", () => {
    const firstBlock = readme.split("```sh\n")[1]?.split("```")[0] ?? "";
    expect(firstBlock).toContain("npm ci && npm start");
    expect(firstBlock).toContain("npm ci && npm test");
    expect(readFileSync(new URL("../../.ci/run", import.meta.url), "utf8")).toContain("npm ci && npm test");
  });

  it("documents every environment variable in docs/operations.md exactly as --help does", () => {
    expect(operations).toContain(formatEnvMarkdown().trim());
  });
});
