import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChildService, freePort } from "./child-service.js";

/** Debian's libnginx-mod-stream (test/support/ensure-tools.sh installs it). */
const STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";

/**
 * A TCP load balancer in front of a RabbitMQ cluster, the alternative to
 * giving every process the list of nodes: nginx's stream module (Debian's
 * package, run as a child process with a private prefix), round-robin over
 * the nodes. A node that refuses the connection or does not accept it within
 * a second is skipped for the next one (`proxy_next_upstream`, on by
 * default), and skipped for 10 s after a failure, like a passive health check.
 */
export class TcpBalancer {
  private constructor(
    private readonly service: ChildService,
    private readonly dir: string,
    readonly port: number,
  ) {}

  /** `amqp://guest:guest@127.0.0.1:<port>/<vhost>` through the balancer. */
  url(vhost = "/"): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}${vhost === "/" ? "" : `/${encodeURIComponent(vhost)}`}`;
  }

  static async start(targets: readonly number[]): Promise<TcpBalancer> {
    const dir = await mkdtemp(join(tmpdir(), "sobranie-balancer-"));
    await mkdir(join(dir, "logs"));
    const port = await freePort();
    const conf = [
      `load_module ${STREAM_MODULE};`,
      ...(process.getuid?.() === 0 ? ["user root;"] : []),
      "worker_processes 1;",
      `error_log ${join(dir, "logs", "error.log")} info;`,
      "events { worker_connections 4096; }",
      "stream {",
      "    upstream rabbitmq {",
      ...targets.map((target) => `        server 127.0.0.1:${target} max_fails=1 fail_timeout=10s;`),
      "    }",
      "    server {",
      `        listen 127.0.0.1:${port};`,
      "        proxy_pass rabbitmq;",
      "        proxy_connect_timeout 1s;",
      // AMQP connections live for hours; the heartbeat keeps them from looking idle anyway.
      "        proxy_timeout 24h;",
      "    }",
      "}",
      "",
    ].join("\n");
    await writeFile(join(dir, "nginx.conf"), conf);
    const args = ["-p", dir, "-e", join(dir, "logs", "error.log"), "-c", join(dir, "nginx.conf"), "-g", `daemon off; pid ${join(dir, "nginx.pid")};`];
    const service = new ChildService("nginx-stream", "/usr/sbin/nginx", args);
    const balancer = new TcpBalancer(service, dir, port);
    await service.waitUntil(() => listening(port), 20_000, "listening").catch(async (error: Error) => {
      await balancer.stop();
      throw new Error(`${error.message}\nerror.log:\n${await readFile(join(dir, "logs", "error.log"), "utf8").catch(() => "")}`);
    });
    return balancer;
  }

  async stop(): Promise<void> {
    await this.service.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
