import { readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, posix, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * The layering of src/ and of the SDK packages in packages/ (docs/architecture.md),
 * checked on every import specifier: static `import … from`, `export … from`,
 * `import x = require(…)`, dynamic `import(…)` and `import("…")` types. An
 * edge between layers is allowed only when the importing layer lists the
 * imported one; third-party and `node:` imports are checked where a layer
 * restricts them. A package is reached by its name (`@sobranie/protocol/…`),
 * never by a relative path, and a package never reaches the server: that is
 * what lets each be installed without the server's dependencies.
 */

type Package = "packages/protocol" | "packages/publisher" | "packages/client";
type Layer = "main" | "app" | "config" | "core" | "http" | "worker" | Package | `adapters/${string}`;

interface LayerRule {
  /** Internal layers this one may import, besides itself. "adapters/*" is every adapter folder. */
  readonly imports: readonly (Layer | "adapters/*" | "*")[];
  /** Packages (and `node:` built-ins as "node:*") it may import; undefined: any. */
  readonly packages?: readonly string[];
}

const RULES: Record<string, LayerRule> = {
  /** Entry point and composition root: they construct adapters, so they may import everything. */
  main: { imports: ["*"] },
  app: { imports: ["*"] },
  /** The environment schema: it reuses the protocol's grammars and the core's policies and limits, and knows no adapter. */
  config: { imports: ["packages/protocol", "core"] },
  /** Wire formats and the clock, logger and backoff every package shares: bundled into the browser client, so no `node:` and nothing but valibot. */
  "packages/protocol": { imports: [], packages: ["valibot"] },
  /** Runtime-agnostic: ports speak protocol types; no I/O library, no `node:`. */
  core: { imports: ["packages/protocol"], packages: ["valibot"] },
  /** Persist-then-relay and the outbox relay: core services over ports, constructed by app/. */
  worker: { imports: ["packages/protocol", "core"], packages: [] },
  /** The HTTP/WebSocket/SSE routes, written once against the edge port: no runtime's package (Node and Bun built-ins are both there). */
  http: { imports: ["packages/protocol", "core"], packages: ["node:*"] },
  /** Each adapter maps one technology onto core ports; one adapter never reaches into another. */
  "adapters/*": { imports: ["packages/protocol", "core"] },
  /** The AMQP adapter connects and confirms with the publisher's machinery (`@sobranie/publisher/amqp/*`) rather than a copy. */
  "adapters/amqp": { imports: ["packages/protocol", "packages/publisher", "core"] },
  /** The browser/React Native SDK: protocol only, and at run time only modules free of packages and `node:` (see below). */
  "packages/client": { imports: ["packages/protocol"], packages: [] },
  /** The backend publisher SDK: protocol only, plus what its package depends on. */
  "packages/publisher": { imports: ["packages/protocol"], packages: ["amqplib", "uuidv7", "valibot", "node:*"] },
};

interface Edge {
  /** Repository-relative, with "/". */
  readonly from: string;
  readonly specifier: string;
  /** Erased at compile time (`import type`, every binding `type`, `import("…")` types). */
  readonly typeOnly: boolean;
}

/** Every module specifier in `text`; a computed dynamic import becomes specifier "" (it cannot be checked). */
function importsOf(from: string, text: string): Edge[] {
  const source = ts.createSourceFile(from, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const edges: Edge[] = [];
  const add = (specifier: ts.Expression | undefined, typeOnly: boolean) => {
    if (specifier === undefined) return;
    edges.push({ from, specifier: ts.isStringLiteralLike(specifier) ? specifier.text : "", typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const bindings = clause?.namedBindings;
      const everyBindingType =
        clause !== undefined &&
        clause.name === undefined &&
        bindings !== undefined &&
        ts.isNamedImports(bindings) &&
        bindings.elements.length > 0 &&
        bindings.elements.every((element) => element.isTypeOnly);
      add(node.moduleSpecifier, clause !== undefined && (clause.isTypeOnly || everyBindingType));
    } else if (ts.isExportDeclaration(node)) {
      const clause = node.exportClause;
      const everyBindingType = clause !== undefined && ts.isNamedExports(clause) && clause.elements.length > 0 && clause.elements.every((element) => element.isTypeOnly);
      add(node.moduleSpecifier, node.isTypeOnly || everyBindingType);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node.arguments[0], false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return edges;
}

const PACKAGE_SCOPE = "@sobranie/";

/** The layer of a repository-relative path under src/ or packages/<name>/src/, or undefined. */
function layerOf(path: string): Layer | undefined {
  const parts = path.split("/");
  if (parts[0] === "packages") return parts[2] === "src" ? packageLayers.find((layer) => layer === `packages/${parts[1]}`) : undefined;
  if (parts[0] !== "src") return undefined;
  if (parts.length === 2 && parts[1] === "main.ts") return "main";
  const top = parts[1];
  if (top === "adapters") return parts.length > 3 ? `adapters/${parts[2]}` : undefined;
  const layers = ["app", "config", "core", "http", "worker"] as const;
  return layers.find((layer) => layer === top);
}

const packageLayers = ["packages/protocol", "packages/publisher", "packages/client"] as const;

function ruleOf(layer: Layer): LayerRule {
  return (RULES[layer] ?? (layer.startsWith("adapters/") ? RULES["adapters/*"] : undefined))!;
}

function mayImport(from: Layer, to: Layer): boolean {
  if (from === to) return true;
  return ruleOf(from).imports.some((allowed) => allowed === "*" || allowed === to || (allowed === "adapters/*" && to.startsWith("adapters/")));
}

const BUILTINS = new Set(builtinModules);

function packageOf(specifier: string): string {
  if (specifier.startsWith("node:") || BUILTINS.has(specifier.split("/")[0]!)) return "node:*";
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

/**
 * The repository-relative .ts source an internal specifier names: a relative
 * path, or `@sobranie/<name>[/<path>]`, which the package's `exports` map to
 * packages/<name>/src/<path>.ts (index.ts without a path). Undefined for a third-party package.
 */
function resolve(from: string, specifier: string): string | undefined {
  if (specifier.startsWith(".")) return posix.normalize(posix.join(posix.dirname(from), specifier)).replace(/\.js$/, ".ts");
  if (!specifier.startsWith(PACKAGE_SCOPE)) return undefined;
  const [name, ...path] = specifier.slice(PACKAGE_SCOPE.length).split("/");
  return `packages/${name}/src/${path.length > 0 ? path.join("/") : "index"}.ts`;
}

/** The package folder (`packages/<name>/`) a repository path lies in, or undefined. */
function packageDirOf(path: string): string | undefined {
  return /^packages\/[^/]+\//.exec(path)?.[0];
}

/** Every edge against the rules, as "file → import: reason". */
function violations(edges: readonly Edge[]): string[] {
  const found: string[] = [];
  const byFile = new Map<string, Edge[]>();
  for (const edge of edges) byFile.set(edge.from, [...(byFile.get(edge.from) ?? []), edge]);
  for (const edge of edges) {
    const from = layerOf(edge.from);
    const where = `${edge.from} → ${edge.specifier || "(computed import)"}`;
    if (from === undefined) {
      found.push(`${where}: ${edge.from} is in no layer`);
      continue;
    }
    if (edge.specifier === "") {
      found.push(`${where}: a dynamic import of a computed specifier cannot be checked`);
      continue;
    }
    const target = resolve(edge.from, edge.specifier);
    if (target === undefined) {
      const pkg = packageOf(edge.specifier);
      const packages = ruleOf(from).packages;
      if (packages !== undefined && !packages.includes(pkg)) {
        found.push(`${where}: ${from} may import only ${packages.length > 0 ? packages.join(", ") : "no package"}`);
      }
      continue;
    }
    const to = layerOf(target);
    if (edge.specifier.startsWith(".") && packageDirOf(edge.from) !== packageDirOf(target)) {
      found.push(`${where}: leaves ${packageDirOf(edge.from) ?? "the server"} by a relative path; ${to?.startsWith("packages/") ? `import ${to.replace("packages/", PACKAGE_SCOPE)} by its name` : "a package never imports the server"}`);
    } else if (to === undefined) found.push(`${where}: ${target} is in no layer`);
    else if (!mayImport(from, to)) found.push(`${where}: ${from} may not import ${to}`);
    else if (from === "packages/client" && !edge.typeOnly) {
      const pulled = runtimePackages(target, byFile, new Set());
      if (pulled !== undefined) found.push(`${where}: the browser bundle would include ${pulled}`);
    }
  }
  return found;
}

/** The first package or built-in `file` loads at run time, directly or through its relative imports, as "pkg (via a → b)". */
function runtimePackages(file: string, byFile: ReadonlyMap<string, Edge[]>, seen: Set<string>): string | undefined {
  if (seen.has(file)) return undefined;
  seen.add(file);
  for (const edge of byFile.get(file) ?? []) {
    if (edge.typeOnly) continue;
    const target = resolve(file, edge.specifier);
    if (target === undefined) return `${edge.specifier} (via ${file})`;
    const deeper = runtimePackages(target, byFile, seen);
    if (deeper !== undefined) return deeper;
  }
  return undefined;
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

function edgesUnder(dir: string): Edge[] {
  return sourceFiles(join(ROOT, dir)).flatMap((path) => importsOf(relative(ROOT, path).split(sep).join("/"), readFileSync(path, "utf8")));
}

describe("layering of src/ and packages/", () => {
  const edges = [...edgesUnder("src"), ...packageLayers.flatMap((layer) => edgesUnder(`${layer}/src`))];

  it("has no import against the layer rules", () => {
    expect(violations(edges)).toEqual([]);
  });

  it.each(packageLayers)("%s depends on exactly the packages its sources import", (layer) => {
    const manifest = JSON.parse(readFileSync(join(ROOT, layer, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
    const imported = new Set(edges.filter((edge) => edge.from.startsWith(`${layer}/`) && !edge.specifier.startsWith(".")).map((edge) => packageOf(edge.specifier)));
    imported.delete("node:*");
    expect(Object.keys(manifest.dependencies ?? {}).sort()).toEqual([...imported].sort());
  });

  it("sees static, re-exported, dynamic and type-position imports, and tells type-only ones apart", () => {
    const text = [
      `import { a } from "./a.js";`,
      `import type { B } from "./b.js";`,
      `import { type C, type D } from "./c.js";`,
      `import { type E, f } from "./e.js";`,
      `export { g } from "./g.js";`,
      `export type { H } from "./h.js";`,
      `export * from "./i.js";`,
      `import "./side-effect.js";`,
      `type J = typeof import("./j.js");`,
      `const k = await import("./k.js");`,
      `const l = await import(name);`,
    ].join("\n");
    expect(importsOf("src/core/x.ts", text).map(({ specifier, typeOnly }) => [specifier, typeOnly])).toEqual([
      ["./a.js", false],
      ["./b.js", true],
      ["./c.js", true],
      ["./e.js", false],
      ["./g.js", false],
      ["./h.js", true],
      ["./i.js", false],
      ["./side-effect.js", false],
      ["./j.js", true],
      ["./k.js", false],
      ["", false],
    ]);
  });

  it("reports each kind of forbidden edge", () => {
    const edge = (from: string, specifier: string, typeOnly = false): Edge => ({ from, specifier, typeOnly });
    expect(
      violations([
        edge("packages/protocol/src/p.ts", "../../../src/core/ports/x.js", true),
        edge("packages/protocol/src/p.ts", "node:crypto"),
        edge("src/core/c.ts", "../adapters/amqp/a.js"),
        edge("src/core/c.ts", "../config/index.js"),
        edge("src/adapters/uws/u.ts", "../bun/b.js", true),
        edge("src/adapters/uws/u.ts", "../../app/index.js"),
        edge("src/adapters/uws/u.ts", "@sobranie/publisher/amqp/session"),
        edge("packages/client/src/k.ts", "@sobranie/protocol/frames"),
        edge("packages/client/src/k.ts", "../../publisher/src/index.js", true),
        edge("packages/protocol/src/frames.ts", "valibot"),
        edge("packages/publisher/src/p.ts", "pg"),
        edge("packages/publisher/src/p.ts", "../../../src/adapters/amqp/topology.js"),
        edge("src/core/c.ts", "../../packages/protocol/src/codes.js"),
        edge("src/config/v.ts", "../adapters/jose/j.js"),
        edge("src/http/h.ts", "../adapters/uws/u.js", true),
        edge("src/http/h.ts", "@btc-vision/uwebsockets.js", true),
        edge("src/core/c.ts", "../http/h.js"),
        edge("src/elsewhere.ts", "./x.js"),
        edge("src/app/a.ts", "../adapters/amqp/a.js"),
        edge("src/adapters/amqp/a.ts", "@sobranie/publisher/amqp/session"),
        edge("src/core/c.ts", "@sobranie/protocol/codes"),
        edge("src/core/c.ts", "./d.js"),
      ]),
    ).toEqual([
      "packages/protocol/src/p.ts → ../../../src/core/ports/x.js: leaves packages/protocol/ by a relative path; a package never imports the server",
      "packages/protocol/src/p.ts → node:crypto: packages/protocol may import only valibot",
      "src/core/c.ts → ../adapters/amqp/a.js: core may not import adapters/amqp",
      "src/core/c.ts → ../config/index.js: core may not import config",
      "src/adapters/uws/u.ts → ../bun/b.js: adapters/uws may not import adapters/bun",
      "src/adapters/uws/u.ts → ../../app/index.js: adapters/uws may not import app",
      "src/adapters/uws/u.ts → @sobranie/publisher/amqp/session: adapters/uws may not import packages/publisher",
      "packages/client/src/k.ts → @sobranie/protocol/frames: the browser bundle would include valibot (via packages/protocol/src/frames.ts)",
      "packages/client/src/k.ts → ../../publisher/src/index.js: leaves packages/client/ by a relative path; import @sobranie/publisher by its name",
      "packages/publisher/src/p.ts → pg: packages/publisher may import only amqplib, uuidv7, valibot, node:*",
      "packages/publisher/src/p.ts → ../../../src/adapters/amqp/topology.js: leaves packages/publisher/ by a relative path; a package never imports the server",
      "src/core/c.ts → ../../packages/protocol/src/codes.js: leaves the server by a relative path; import @sobranie/protocol by its name",
      "src/config/v.ts → ../adapters/jose/j.js: config may not import adapters/jose",
      "src/http/h.ts → ../adapters/uws/u.js: http may not import adapters/uws",
      "src/http/h.ts → @btc-vision/uwebsockets.js: http may import only node:*",
      "src/core/c.ts → ../http/h.js: core may not import http",
      "src/elsewhere.ts → ./x.js: src/elsewhere.ts is in no layer",
    ]);
  });
});
