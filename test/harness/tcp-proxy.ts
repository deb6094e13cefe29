// A TCP proxy in front of one server (kube-apiserver) for one client, to cut that client off the way a network
// partition does: while partitioned, connections stay open and new ones are accepted, but every byte in either
// direction is swallowed, so requests hang without an error, as they do behind a dead link.
import { connect, createServer, type Server, type Socket } from "node:net";

export interface TcpProxy {
  /** 127.0.0.1:<port> to connect to instead of the server. */
  readonly port: number;
  /** Swallows all traffic from now on (true), or forwards it again (false). */
  partition(on: boolean): void;
  /** Closes every open connection at once, as a network blip or a restarted load balancer would. */
  dropConnections(): void;
  stop(): Promise<void>;
}

interface Link {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Bytes were swallowed: the streams (TLS) are corrupt and the link cannot be resumed. */
  damaged: boolean;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const links = new Set<Link>();
  let partitioned = false;

  const forward = (link: Link, from: Socket, to: Socket) => {
    from.on("data", (chunk: Buffer) => {
      if (partitioned) link.damaged = true;
      else to.write(chunk);
    });
    from.on("end", () => {
      if (!partitioned) to.end();
    });
  };

  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    const link: Link = { client, upstream, damaged: false };
    links.add(link);
    const close = () => {
      links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
    forward(link, client, upstream);
    forward(link, upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (!address || typeof address !== "object") throw new Error("the proxy has no port");

  const dropConnections = () => {
    for (const link of [...links]) {
      link.client.destroy();
      link.upstream.destroy();
    }
  };
  return {
    port: address.port,
    partition(on) {
      partitioned = on;
      // Swallowed bytes cannot be replayed: when the partition heals, the links it damaged are reset.
      if (!on) for (const link of [...links]) if (link.damaged) {
        link.client.destroy();
        link.upstream.destroy();
      }
    },
    dropConnections,
    async stop() {
      dropConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
