import net from 'node:net';

/**
 * A TCP proxy in front of a real server that can turn into a blackhole: connections stay open
 * and new ones are accepted, but nothing is forwarded or answered any more, as with a server
 * whose host froze or a firewall that drops packets. Unlike a stopped server (connection
 * refused at once), this is the failure only timeouts can detect.
 */
export class BlackholeProxy {
  private blackholed = false;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket | null }>();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<BlackholeProxy> {
    let proxy: BlackholeProxy | null = null;
    const server = net.createServer((client) => proxy?.accept(client, targetPort, targetHost));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new BlackholeProxy(server, (server.address() as net.AddressInfo).port);
    return proxy;
  }

  /** From now on nothing passes either way; every byte is swallowed. */
  blackhole(): void {
    this.blackholed = true;
    for (const pair of this.pairs) this.silence(pair);
  }

  /** Cuts every connection (so clients notice at once) and forwards again. */
  restore(): void {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream?.destroy();
    }
    this.pairs.clear();
    this.blackholed = false;
  }

  async close(): Promise<void> {
    this.restore();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, port: number, host: string): void {
    const pair: { client: net.Socket; upstream: net.Socket | null } = { client, upstream: null };
    this.pairs.add(pair);
    client.on('error', () => undefined);
    client.on('close', () => this.pairs.delete(pair));
    if (this.blackholed) {
      this.silence(pair);
      return;
    }
    const upstream = net.connect(port, host);
    pair.upstream = upstream;
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  }

  private silence(pair: { client: net.Socket; upstream: net.Socket | null }): void {
    const { client, upstream } = pair;
    if (upstream) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      upstream.on('data', () => undefined);
    }
    client.on('data', () => undefined);
  }
}
