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
  /** While holding: what was received, in order, to be forwarded on `release`. */
  private held: Array<{ to: net.Socket; chunk: Buffer }> | undefined;
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
      this.forward(client, upstream);
      this.forward(upstream, client);
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

  /**
   * Unlike `freeze`, bytes are still read from both sides, but kept until
   * `release`; `heldToTarget` shows what the clients sent meanwhile (a test
   * can wait for a publish to have left the gateway while its confirm cannot
   * come back).
   */
  hold(): void {
    this.held ??= [];
  }

  get heldToTarget(): Buffer {
    return Buffer.concat((this.held ?? []).filter(({ to }) => to.remotePort === this.targetPort).map(({ chunk }) => chunk));
  }

  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const { to, chunk } of held) to.write(chunk);
  }

  private forward(from: net.Socket, to: net.Socket): void {
    from.on("data", (chunk: Buffer) => {
      if (this.held) this.held.push({ to, chunk });
      else if (!to.write(chunk)) {
        from.pause();
        to.once("drain", () => {
          if (!this.frozen) from.resume();
        });
      }
    });
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
