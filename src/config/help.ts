import { VARIABLES } from "./schema.js";

export interface EnvVarDoc {
  readonly name: string;
  /** What an operator gets when the variable is unset; `undefined` means it stays unset. */
  readonly default: string | undefined;
  readonly description: string;
}

/** Every variable the process reads, in schema order: the single source for `--help` and docs/operations.md. */
export const ENV_VARS: readonly EnvVarDoc[] = Object.entries(VARIABLES).map(([name, spec]) => ({
  name,
  default: "defaultText" in spec ? spec.defaultText : spec.default,
  description: spec.description,
}));

/** Plain-text table for `--help`. */
export function formatEnvHelp(): string {
  const width = Math.max(...ENV_VARS.map((doc) => doc.name.length)) + 2;
  const lines = ENV_VARS.map((doc) => {
    const fallback = doc.default === undefined ? "unset" : `default ${doc.default}`;
    return `  ${doc.name.padEnd(width)}${doc.description} (${fallback})`;
  });
  return ["Environment variables:", ...lines].join("\n");
}

/** Markdown table for docs/operations.md "Configuration". */
export function formatEnvMarkdown(): string {
  const cell = (text: string) => text.replaceAll("|", "\\|");
  const rows = ENV_VARS.map(
    (doc) => `| \`${doc.name}\` | ${cell(doc.description)} | ${doc.default === undefined ? "unset" : `\`${cell(doc.default)}\``} |`,
  );
  return ["| variable | meaning | default |", "|---|---|---|", ...rows].join("\n");
}
