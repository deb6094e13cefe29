// /healthz, /readyz and /metrics on fastify, for kubelet probes and Prometheus.
import Fastify, { type FastifyInstance } from "fastify";
import type { ControllerMetrics } from "./metrics.ts";

export async function startProbeServer(options: {
  host: string;
  port: number;
  metrics: ControllerMetrics;
  isReady: () => boolean;
  /**
   * What is wrong enough that a restart could help (dead watches, a lease not renewed); /healthz answers 503 with
   * them, one a line, so the kubelet restarts the process and `kubectl describe` shows why.
   */
  healthProblems?: () => readonly string[];
}): Promise<{ server: FastifyInstance; address: string }> {
  const server = Fastify({ logger: false });
  server.get("/healthz", async (_request, reply) => {
    const problems = options.healthProblems?.() ?? [];
    return problems.length === 0 ? "ok" : reply.code(503).send(`unhealthy:\n${problems.join("\n")}\n`);
  });
  server.get("/readyz", async (_request, reply) => (options.isReady() ? "ok" : reply.code(503).send("not ready")));
  server.get("/metrics", async (_request, reply) => reply.header("content-type", "text/plain; version=0.0.4").send(options.metrics.render()));
  const address = await server.listen({ host: options.host, port: options.port });
  return { server, address };
}
