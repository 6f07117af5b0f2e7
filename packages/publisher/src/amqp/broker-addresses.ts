/**
 * The RabbitMQ nodes one connection loop may use, tried in rotation.
 *
 * Guarantees: consecutive `next()` calls cycle through every address; the
 * first one is picked at random, so a fleet of processes spreads over the
 * cluster instead of piling onto the first node listed; and since the owner
 * calls `next()` for every attempt, the node a connection was just lost on
 * is the last one tried again. A TCP load balancer in front of the cluster
 * is the alternative: then the list has one entry and this does nothing.
 */
export class BrokerAddresses {
  private cursor: number;

  constructor(
    readonly urls: readonly string[],
    random: () => number = Math.random,
  ) {
    if (urls.length === 0) throw new RangeError("at least one broker URL is needed");
    this.cursor = Math.floor(random() * urls.length) % urls.length;
  }

  /** The address for the next connection attempt. */
  next(): string {
    const url = this.urls[this.cursor] as string;
    this.cursor = (this.cursor + 1) % this.urls.length;
    return url;
  }
}

/** `host:port/vhost`, for logs: never the credentials. */
export function describeBrokerUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const vhost = decodeURIComponent(parsed.pathname.replace(/^\//, "")) || "/";
    return `${parsed.hostname}:${parsed.port || (parsed.protocol === "amqps:" ? "5671" : "5672")}/${vhost === "/" ? "" : vhost}`;
  } catch {
    return "(unparsable URL)";
  }
}
