// status.history as Flux records it (fluxcd/pkg/apis/meta History.Upsert): a snapshot per digest of the built objects
// and outcome, the most recent first, at most five. A reconcile that gets as far as a build adds to it: success,
// or failure to apply, prune or pass the health check. Pure.
import { createHash } from "node:crypto";
import { formatDuration } from "../api/duration.ts";
import type { HistorySnapshotType } from "../api/kustomize.ts";

/** Flux's meta.HistoryMaxSize. */
export const HISTORY_MAX_SIZE = 5;

/** The outcomes Flux records, by its condition reasons. */
export type HistoryStatus = "ReconciliationSucceeded" | "ReconciliationFailed" | "PruneFailed" | "HealthCheckFailed";

/**
 * `sha256:<hex>` of the objects a build produced. Flux digests kustomize's YAML output; Ferry digests the objects
 * as JSON, so the values differ from Flux's, but the same objects always give the same digest.
 */
export function historyDigest(objects: readonly unknown[]): string {
  return `sha256:${createHash("sha256").update(JSON.stringify(objects)).digest("hex")}`;
}

export interface HistoryRecord {
  readonly digest: string;
  readonly at: Date;
  readonly durationMs: number;
  readonly status: HistoryStatus;
  readonly metadata: Readonly<Record<string, string>>;
}

/** metav1.Time: RFC 3339 in UTC, whole seconds. */
function kubeTime(at: Date): string {
  return `${at.toISOString().slice(0, 19)}Z`;
}

/**
 * `history` with `record` added: a snapshot of the same digest and status is updated and moved to the front (its
 * count goes up), otherwise a new one goes first; the oldest beyond five are dropped.
 */
export function upsertHistory(history: readonly HistorySnapshotType[] | undefined, record: HistoryRecord): HistorySnapshotType[] {
  const now = kubeTime(record.at);
  const duration = formatDuration(record.durationMs);
  const snapshots = [...(history ?? [])];
  const index = snapshots.findIndex((snapshot) => snapshot.digest === record.digest && snapshot.lastReconciledStatus === record.status);
  const previous = index >= 0 ? snapshots.splice(index, 1)[0] : undefined;
  const snapshot: HistorySnapshotType = {
    digest: record.digest,
    firstReconciled: previous?.firstReconciled ?? now,
    lastReconciled: now,
    lastReconciledDuration: duration,
    lastReconciledStatus: record.status,
    totalReconciliations: (previous?.totalReconciliations ?? 0) + 1,
    metadata: { ...record.metadata },
  };
  return [snapshot, ...snapshots].slice(0, HISTORY_MAX_SIZE);
}
