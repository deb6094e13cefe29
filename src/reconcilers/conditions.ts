// kstatus-compatible conditions: Ready summarises; Reconciling and Stalled are abnormal-true (present only when
// True); lastTransitionTime changes only when a condition's status changes.
import type { ConditionType } from "../api/meta.ts";

export type ConditionStatus = "True" | "False" | "Unknown";

export function setCondition(
  conditions: readonly ConditionType[],
  type: string,
  status: ConditionStatus,
  reason: string,
  message: string,
  observedGeneration: number,
  now: Date = new Date(),
): ConditionType[] {
  const existing = conditions.find((condition) => condition.type === type);
  const lastTransitionTime = existing && existing.status === status ? existing.lastTransitionTime : `${now.toISOString().slice(0, 19)}Z`;
  const updated: ConditionType = { type, status, reason, message: message.slice(0, 32_000), observedGeneration, lastTransitionTime };
  return [...conditions.filter((condition) => condition.type !== type), updated].sort((a, b) => order(a.type) - order(b.type));
}

export function removeCondition(conditions: readonly ConditionType[], type: string): ConditionType[] {
  return conditions.filter((condition) => condition.type !== type);
}

export function findCondition(conditions: readonly ConditionType[] | undefined, type: string): ConditionType | undefined {
  return conditions?.find((condition) => condition.type === type);
}

const ORDER = ["Ready", "Reconciling", "Stalled", "FetchFailed", "SourceVerified", "ArtifactInStorage"];
function order(type: string): number {
  const index = ORDER.indexOf(type);
  return index === -1 ? ORDER.length : index;
}
