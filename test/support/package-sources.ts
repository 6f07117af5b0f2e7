import { fileURLToPath } from "node:url";

const PACKAGES = fileURLToPath(new URL("../../packages/", import.meta.url));

/**
 * Vitest runs the SDK packages from their TypeScript sources, so test:fast
 * needs no build: `@sobranie/<name>` is packages/<name>/src/index.ts and
 * `@sobranie/<name>/<path>` is packages/<name>/src/<path>.ts, the files the
 * packages' `exports` compile to. Node, tsc and esbuild resolve the built
 * packages through node_modules instead.
 */
export const packageSources: readonly { readonly find: RegExp; readonly replacement: string }[] = [
  { find: /^@sobranie\/([a-z]+)$/, replacement: `${PACKAGES}$1/src/index.ts` },
  { find: /^@sobranie\/([a-z]+)\/(.+)$/, replacement: `${PACKAGES}$1/src/$2.ts` },
];
