// etcd's own maintenance, through its HTTP gateway (etcdctl is not part of the test bed).
import { probe } from "./http.ts";

async function call(etcdUrl: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await probe(`${etcdUrl}${path}`, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
  if (response.status !== 200) throw new Error(`etcd ${path} answered ${response.status}: ${response.body.toString()}`);
  return JSON.parse(response.body.toString()) as Record<string, unknown>;
}

/**
 * Compacts etcd's history up to its current revision, as kube-apiserver does every --etcd-compaction-interval:
 * a watch from any earlier resourceVersion that reaches etcd is then answered 410 Gone. Returns that revision.
 */
export async function compactEtcd(etcdUrl: string): Promise<number> {
  const range = await call(etcdUrl, "/v3/kv/range", { key: Buffer.from("/").toString("base64"), limit: 1 });
  const revision = Number((range.header as { revision?: string } | undefined)?.revision);
  if (!Number.isSafeInteger(revision) || revision < 1) throw new Error(`etcd reported no revision: ${JSON.stringify(range)}`);
  await call(etcdUrl, "/v3/kv/compaction", { revision: String(revision), physical: true });
  return revision;
}
