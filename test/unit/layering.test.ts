import { readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, posix, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * The layering of src/ (docs/architecture.md), checked on every import specifier:
 * static `import … from`, `export … from`, `import x = require(…)`, dynamic
 * `import(…)` and `import("…")` types. An edge between layers is allowed only
 * when the importing layer lists the imported one; third-party and `node:`
 * imports are checked where a layer restricts them.
 */

type Layer = "main" | "app" | "config" | "protocol" | "core" | "http" | "worker" | "client" | "publisher" | `adapters/${string}`;

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
  config: { imports: ["protocol", "core"] },
  /** Wire formats: bundled into the browser client, so no `node:` and nothing but valibot. */
  protocol: { imports: [], packages: ["valibot"] },
  /** Runtime-agnostic: ports speak protocol types; no I/O library, no `node:`. */
  core: { imports: ["protocol"], packages: ["valibot"] },
  /** Persist-then-relay and the outbox relay: core services over ports, constructed by app/. */
  worker: { imports: ["protocol", "core"], packages: [] },
  /** The HTTP/WebSocket/SSE routes, written once against the edge port: no runtime's package (Node and Bun built-ins are both there). */
  http: { imports: ["protocol", "core"], packages: ["node:*"] },
  /** Each adapter maps one technology onto core ports; one adapter never reaches into another. */
  "adapters/*": { imports: ["protocol", "core"] },
  /** The browser/React Native SDK: protocol only, and at run time only modules free of packages and `node:` (see below). */
  client: { imports: ["protocol"], packages: [] },
  /** The backend publisher SDK: protocol only, plus what its package depends on. */
  publisher: { imports: ["protocol"], packages: ["amqplib", "uuidv7", "valibot", "node:*"] },
};

/**
 * Known edges against the rules, each with the issue item that removes it. A
 * listed edge that no longer exists fails the test, so the list only shrinks.
 */
const ALLOWED: readonly { from: string; to: string; why: string }[] = [
  // #15 item 6 (workspaces): the publisher becomes its own package; until then
  // it shares the server's AMQP session, confirm publisher, topology names,
  // backoff, clock and logger ports instead of a copy.
  ...[
    "src/adapters/amqp/broker-addresses.ts",
    "src/adapters/amqp/publisher.ts",
    "src/adapters/amqp/session.ts",
    "src/adapters/amqp/topology.ts",
    "src/core/backoff.ts",
    "src/core/ports/clock.ts",
    "src/core/ports/broker.ts",
  ].map((to) => ({ from: "src/publisher/publisher.ts", to, why: "#15 item 6" })),
  { from: "src/publisher/index.ts", to: "src/core/ports/logger.ts", why: "#15 item 6" },
  { from: "src/publisher/index.ts", to: "src/adapters/amqp/publisher.ts", why: "#15 item 6" },
  { from: "src/publisher/options.ts", to: "src/core/ports/logger.ts", why: "#15 item 6" },
];

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

/** The layer of a repository-relative path under src/, or undefined. */
function layerOf(path: string): Layer | undefined {
  const parts = path.split("/");
  if (parts[0] !== "src") return undefined;
  if (parts.length === 2 && parts[1] === "main.ts") return "main";
  const top = parts[1];
  if (top === "adapters") return parts.length > 3 ? `adapters/${parts[2]}` : undefined;
  const layers = ["app", "config", "protocol", "core", "http", "worker", "client", "publisher"] as const;
  return layers.find((layer) => layer === top);
}

function ruleOf(layer: Layer): LayerRule {
  return (layer.startsWith("adapters/") ? RULES["adapters/*"] : RULES[layer])!;
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

/** A relative specifier resolved to its repository-relative .ts source. */
function resolve(from: string, specifier: string): string {
  return posix.normalize(posix.join(posix.dirname(from), specifier)).replace(/\.js$/, ".ts");
}

/** Every edge against the rules, as "file → import: reason". */
function violations(edges: readonly Edge[], allowed: typeof ALLOWED = []): string[] {
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
    if (!edge.specifier.startsWith(".")) {
      const pkg = packageOf(edge.specifier);
      const packages = ruleOf(from).packages;
      if (packages !== undefined && !packages.includes(pkg) && !allowed.some((entry) => entry.from === edge.from && entry.to === pkg)) {
        found.push(`${where}: ${from} may import only ${packages.length > 0 ? packages.join(", ") : "no package"}`);
      }
      continue;
    }
    const target = resolve(edge.from, edge.specifier);
    const to = layerOf(target);
    if (allowed.some((entry) => entry.from === edge.from && entry.to === target)) continue;
    if (to === undefined) found.push(`${where}: ${target} is in no layer`);
    else if (!mayImport(from, to)) found.push(`${where}: ${from} may not import ${to}`);
    else if (from === "client" && !edge.typeOnly) {
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
    if (!edge.specifier.startsWith(".")) return `${edge.specifier} (via ${file})`;
    const deeper = runtimePackages(resolve(file, edge.specifier), byFile, seen);
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

function srcEdges(): Edge[] {
  return sourceFiles(join(ROOT, "src")).flatMap((path) => importsOf(relative(ROOT, path).split(sep).join("/"), readFileSync(path, "utf8")));
}

describe("layering of src/", () => {
  const edges = srcEdges();

  it("has no import against the layer rules", () => {
    expect(violations(edges, ALLOWED)).toEqual([]);
  });

  it("lists only allowed edges that still exist", () => {
    const stale = ALLOWED.filter((entry) => !edges.some((edge) => edge.from === entry.from && edge.specifier.startsWith(".") && resolve(edge.from, edge.specifier) === entry.to));
    expect(stale).toEqual([]);
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
        edge("src/protocol/p.ts", "../core/ports/x.js", true),
        edge("src/protocol/p.ts", "node:crypto"),
        edge("src/core/c.ts", "../adapters/amqp/a.js"),
        edge("src/core/c.ts", "../config/index.js"),
        edge("src/adapters/uws/u.ts", "../bun/b.js", true),
        edge("src/adapters/uws/u.ts", "../../app/index.js"),
        edge("src/client/k.ts", "../core/session.js", true),
        edge("src/client/k.ts", "../protocol/frames.js"),
        edge("src/protocol/frames.ts", "valibot"),
        edge("src/publisher/p.ts", "../adapters/amqp/session.js"),
        edge("src/publisher/p.ts", "pg"),
        edge("src/config/v.ts", "../adapters/jose/j.js"),
        edge("src/http/h.ts", "../adapters/uws/u.js", true),
        edge("src/http/h.ts", "@btc-vision/uwebsockets.js", true),
        edge("src/core/c.ts", "../http/h.js"),
        edge("src/elsewhere.ts", "./x.js"),
        edge("src/app/a.ts", "../adapters/amqp/a.js"),
        edge("src/core/c.ts", "./d.js"),
      ]),
    ).toEqual([
      "src/protocol/p.ts → ../core/ports/x.js: protocol may not import core",
      "src/protocol/p.ts → node:crypto: protocol may import only valibot",
      "src/core/c.ts → ../adapters/amqp/a.js: core may not import adapters/amqp",
      "src/core/c.ts → ../config/index.js: core may not import config",
      "src/adapters/uws/u.ts → ../bun/b.js: adapters/uws may not import adapters/bun",
      "src/adapters/uws/u.ts → ../../app/index.js: adapters/uws may not import app",
      "src/client/k.ts → ../core/session.js: client may not import core",
      "src/client/k.ts → ../protocol/frames.js: the browser bundle would include valibot (via src/protocol/frames.ts)",
      "src/publisher/p.ts → ../adapters/amqp/session.js: publisher may not import adapters/amqp",
      "src/publisher/p.ts → pg: publisher may import only amqplib, uuidv7, valibot, node:*",
      "src/config/v.ts → ../adapters/jose/j.js: config may not import adapters/jose",
      "src/http/h.ts → ../adapters/uws/u.js: http may not import adapters/uws",
      "src/http/h.ts → @btc-vision/uwebsockets.js: http may import only node:*",
      "src/core/c.ts → ../http/h.js: core may not import http",
      "src/elsewhere.ts → ./x.js: src/elsewhere.ts is in no layer",
    ]);
  });
});
