import net from "node:net";

/**
 * A TCP proxy in front of RabbitMQ that a test can cut and restore: an
 * outage for one gateway only, without disturbing the broker that other
 * test files share.
 */
export class TcpProxy {
  private readonly sockets = new Set<net.Socket>();
  private cutOff = false;
  private frozen = false;
  private server: net.Server | undefined;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private targetPort: number,
  ) {}

  /** New connections go to `port` from now on (a restarted server on a fresh port); open ones stay. */
  retarget(port: number): void {
    this.targetPort = port;
  }

  async start(): Promise<void> {
    this.server = net.createServer((client) => {
      if (this.cutOff) return void client.destroy();
      const upstream = net.connect(this.targetPort, this.targetHost);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on("close", () => this.sockets.delete(socket));
        socket.on("error", () => {});
        if (this.frozen) socket.pause();
      }
      client.pipe(upstream).pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Drops every connection and refuses new ones until `restore`. */
  cut(): void {
    this.cutOff = true;
    for (const socket of this.sockets) socket.destroy();
  }

  restore(): void {
    this.cutOff = false;
  }

  /** Client connections open now (each counts once). */
  get connections(): number {
    return this.sockets.size / 2;
  }

  /**
   * A hung broker node (SIGSTOP): connections stay open and new ones are
   * accepted, but no byte moves either way until `thaw`.
   */
  freeze(): void {
    this.frozen = true;
    for (const socket of this.sockets) socket.pause();
  }

  thaw(): void {
    this.frozen = false;
    for (const socket of this.sockets) socket.resume();
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
