import { SobranieError } from "@sobranie/protocol/errors";

/** One bad environment variable and what is wrong with it. */
export interface ConfigProblem {
  readonly variable: string;
  readonly message: string;
}

/**
 * The environment was rejected. Guarantee: `problems` holds every problem
 * found (not just the first), and `message` names every bad variable, one
 * line each, so an operator fixes them all in one go.
 */
export class ConfigError extends SobranieError {
  override readonly name = "ConfigError";
  readonly code = "bad_config";
  readonly retryable = false;
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[], options?: { cause?: unknown }) {
    super(formatProblems(problems), options);
    this.problems = problems;
  }
}

function formatProblems(problems: readonly ConfigProblem[]): string {
  const byVariable = new Map<string, string[]>();
  for (const { variable, message } of problems) {
    const messages = byVariable.get(variable) ?? [];
    messages.push(message);
    byVariable.set(variable, messages);
  }
  const lines = [...byVariable].map(([variable, messages]) => `  ${variable}: ${messages.join("; ")}`);
  const count = byVariable.size === 1 ? "1 variable" : `${byVariable.size} variables`;
  return [`invalid configuration (${count}):`, ...lines].join("\n");
}
