import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ChildService, replaceExactly } from "./child-service.js";

/** The shipped site config (compose mounts it as /etc/nginx/conf.d/default.conf). */
export const SHIPPED_NGINX_CONF = fileURLToPath(new URL("../../monitoring/nginx/nginx.conf", import.meta.url));

/**
 * nginx (the Debian package, `/usr/sbin/nginx`) in front of gateways on
 * loopback, as a child process with its own prefix directory, never the
 * system service. The site is the shipped `monitoring/nginx/nginx.conf` with
 * only `listen 80` and the two upstream `server gateway-N:8080` lines
 * rewritten to loopback ports; a minimal main config (the part of Debian's
 * /etc/nginx/nginx.conf the site needs: events, http, private log and temp
 * paths) includes it.
 */
export class NginxProcess {
  private constructor(
    private readonly service: ChildService,
    private readonly dir: string,
    readonly port: number,
  ) {}

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/realtime/ws`;
  }

  static async start(port: number, gatewayPorts: readonly [number, number]): Promise<NginxProcess> {
    const dir = await mkdtemp(join(tmpdir(), "sobranie-nginx-"));
    await mkdir(join(dir, "logs"));
    await mkdir(join(dir, "temp"));
    let site = await readFile(SHIPPED_NGINX_CONF, "utf8");
    site = replaceExactly(site, /^(\s*)listen 80;/m, `$1listen 127.0.0.1:${port};`);
    site = replaceExactly(site, "server gateway-1:8080 ", `server 127.0.0.1:${gatewayPorts[0]} `);
    site = replaceExactly(site, "server gateway-2:8080 ", `server 127.0.0.1:${gatewayPorts[1]} `);
    await writeFile(join(dir, "sobranie.conf"), site);
    const main = [
      // The prefix directory is private to root (mkdtemp 0700): workers stay root too.
      ...(process.getuid?.() === 0 ? ["user root;"] : []),
      "worker_processes 1;",
      `error_log ${join(dir, "logs", "error.log")} info;`,
      "events { worker_connections 1024; }",
      "http {",
      `    access_log ${join(dir, "logs", "access.log")};`,
      ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((kind) => `    ${kind}_temp_path ${join(dir, "temp", kind)};`),
      `    include ${join(dir, "sobranie.conf")};`,
      "}",
      "",
    ].join("\n");
    const conf = join(dir, "nginx.conf");
    await writeFile(conf, main);
    const args = ["-p", dir, "-e", join(dir, "logs", "error.log"), "-c", conf, "-g", `daemon off; pid ${join(dir, "nginx.pid")};`];
    const service = new ChildService("nginx", "/usr/sbin/nginx", args);
    const nginx = new NginxProcess(service, dir, port);
    // `location /` answers 404 from nginx itself: listening, config loaded.
    await service.waitUntil(async () => (await fetch(`http://127.0.0.1:${port}/`)).status === 404, 20_000, "listening").catch(async (error: Error) => {
      await nginx.stop();
      throw new Error(`${error.message}\nerror.log:\n${await nginx.errorLog()}`);
    });
    return nginx;
  }

  async errorLog(): Promise<string> {
    return readFile(join(this.dir, "logs", "error.log"), "utf8").catch(() => "");
  }

  async stop(): Promise<void> {
    await this.service.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
