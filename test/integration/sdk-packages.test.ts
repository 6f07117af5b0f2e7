import amqp from "amqplib";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AmqpNames } from "@sobranie/protocol/amqp";
import { assertSharedTopology } from "../../src/adapters/amqp/topology.js";
import { RABBITMQ_URL } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";

/**
 * The SDK packages as a backend or a web app gets them: `npm pack`ed from
 * the built workspaces (npm run build:test first), then installed alone
 * into an empty project. The install is `npm ci --offline` from a lockfile
 * made of the packed manifests' dependencies and their versions in this
 * repository's lockfile, so it takes the tarballs from the local npm cache
 * and needs no registry; whatever a packed manifest declares gets installed,
 * so a server dependency declared by an SDK package would show up here.
 */

const execFileAsync = promisify(execFile);
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SDK_PACKAGES = ["protocol", "publisher", "client"] as const;
const INSTALL_TIMEOUT_MS = 180_000;

interface LockEntry {
  readonly version?: string;
  readonly integrity?: string;
  readonly resolved?: string;
  readonly dependencies?: Record<string, string>;
  readonly [field: string]: unknown;
}
interface PackResult {
  readonly name: string;
  readonly filename: string;
  readonly integrity: string;
}
interface Manifest {
  readonly dependencies?: Record<string, string>;
}

const readJson = async <T>(path: string): Promise<T> => JSON.parse(await readFile(path, "utf8")) as T;

/** Every package name under `dir`/node_modules, nested ones included. */
async function installedNames(dir: string): Promise<string[]> {
  const modules = join(dir, "node_modules");
  const entries = await readdir(modules, { withFileTypes: true }).catch(() => []);
  const names: string[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith(".")) continue;
    const inScope = entry.name.startsWith("@") ? (await readdir(join(modules, entry.name))).map((name) => `${entry.name}/${name}`) : [entry.name];
    for (const name of inScope) names.push(name, ...(await installedNames(join(modules, name))));
  }
  return names;
}

/**
 * A lockfile for a project depending on the tarballs: each tarball's entry,
 * then the closure of their third-party dependencies copied from the
 * repository's lockfile (hoisted entries; npm ci checks that it is complete).
 */
function lockfileFor(packed: readonly PackResult[], manifests: ReadonlyMap<string, Manifest>, repoLock: Record<string, LockEntry>): object {
  const packages: Record<string, LockEntry> = {
    "": { name: "sdk-consumer", dependencies: Object.fromEntries(packed.map((pack) => [pack.name, `file:${pack.filename}`])) },
  };
  const pending: string[] = [];
  for (const pack of packed) {
    const dependencies = manifests.get(pack.name)?.dependencies ?? {};
    packages[`node_modules/${pack.name}`] = { version: "0.1.0", resolved: `file:${pack.filename}`, integrity: pack.integrity, dependencies };
    pending.push(...Object.keys(dependencies));
  }
  while (pending.length > 0) {
    const name = pending.pop()!;
    const path = `node_modules/${name}`;
    if (packages[path] !== undefined) continue;
    const entry = repoLock[path];
    if (entry === undefined) throw new Error(`${name} is not in package-lock.json`);
    packages[path] = entry;
    pending.push(...Object.keys(entry.dependencies ?? {}));
  }
  return { name: "sdk-consumer", lockfileVersion: 3, requires: true, packages };
}

describe("the SDK packages installed without the server", () => {
  let project: string;
  let manifests: Map<string, Manifest>;

  beforeAll(async () => {
    project = await mkdtemp(join(tmpdir(), "sobranie-sdk-"));
    const { stdout } = await execFileAsync(
      "npm",
      ["pack", "--json", "--silent", "--pack-destination", project, ...SDK_PACKAGES.flatMap((name) => ["--workspace", `packages/${name}`])],
      { cwd: ROOT },
    );
    const packed = (JSON.parse(stdout) as PackResult[]).map((pack) => ({ ...pack, filename: `./${pack.filename}` }));
    manifests = new Map(await Promise.all(SDK_PACKAGES.map(async (name) => [`@sobranie/${name}`, await readJson<Manifest>(join(ROOT, "packages", name, "package.json"))] as const)));
    const repoLock = (await readJson<{ packages: Record<string, LockEntry> }>(join(ROOT, "package-lock.json"))).packages;
    const lock = lockfileFor(packed, manifests, repoLock);
    const manifest = { name: "sdk-consumer", private: true, type: "module", dependencies: (lock as { packages: Record<string, LockEntry> }).packages[""]!.dependencies };
    await writeFile(join(project, "package.json"), JSON.stringify(manifest, null, 2));
    await writeFile(join(project, "package-lock.json"), JSON.stringify(lock, null, 2));
    await execFileAsync("npm", ["ci", "--offline", "--ignore-scripts", "--no-audit", "--no-fund"], { cwd: project });
  }, INSTALL_TIMEOUT_MS);

  afterAll(async () => {
    if (project !== undefined) await rm(project, { recursive: true, force: true });
  });

  it("installs the SDKs' own dependencies and none of the server's", async () => {
    const server = (await readJson<Manifest>(join(ROOT, "package.json"))).dependencies ?? {};
    const sdkDependencies = new Set([...manifests.values()].flatMap((manifest) => Object.keys(manifest.dependencies ?? {})));
    const serverOnly = Object.keys(server).filter((name) => !sdkDependencies.has(name) && !name.startsWith("@sobranie/"));
    expect(serverOnly).toEqual(expect.arrayContaining(["@btc-vision/uwebsockets.js", "@trufflesuite/uws-js-unofficial", "@electric-sql/pglite", "@mikro-orm/core"]));
    const installed = await installedNames(project);
    expect(installed).toEqual(expect.arrayContaining(["@sobranie/protocol", "@sobranie/publisher", "@sobranie/client", "amqplib", "uuidv7", "valibot"]));
    expect(installed.filter((name) => serverOnly.includes(name) || /uws|pglite|mikro-orm/i.test(name))).toEqual([]);
  });

  it("publishes an event with the installed publisher to the real RabbitMQ, and the client and protocol load", async () => {
    const model = await amqp.connect(RABBITMQ_URL);
    try {
      const channel = await model.createChannel();
      await assertSharedTopology(channel, []);
      const { queue } = await channel.assertQueue("", { exclusive: true });
      await channel.bindQueue(queue, AmqpNames.eventsExchange, "sdkpack.#");
      const received: { routingKey: string; body: unknown }[] = [];
      await channel.consume(queue, (message) => {
        if (message !== null) received.push({ routingKey: message.fields.routingKey, body: JSON.parse(message.content.toString("utf8")) });
      }, { noAck: true });

      const script = `
        import { createPublisher } from "@sobranie/publisher";
        import { connect } from "@sobranie/client";
        import { parseChannel } from "@sobranie/protocol/channel";
        if (typeof connect !== "function" || parseChannel("sdkpack:1") === undefined) throw new Error("an SDK export is missing");
        const publisher = createPublisher({ url: process.env.RABBITMQ_URL });
        const { id } = await publisher.publish("sdkpack:1", "sdk.installed", { ok: true });
        await publisher.close();
        console.log(id);`;
      const { stdout } = await execFileAsync(process.execPath, ["--input-type=module", "-e", script], { cwd: project, env: { ...process.env, RABBITMQ_URL } });
      const id = stdout.trim();
      await waitFor(() => received.length > 0, 10_000, "the published event");
      expect(received).toEqual([{ routingKey: "sdkpack.1.sdk.installed", body: expect.objectContaining({ id, type: "sdk.installed", data: { ok: true } }) }]);
    } finally {
      await model.close();
    }
  }, INSTALL_TIMEOUT_MS);
});
