// Flux's names for Ferry's per-object annotations and labels. Objects written for Flux carry
// kustomize.toolkit.fluxcd.io/{ssa,force,prune,substitute} and reconcile.fluxcd.io/requestedAt; a Flux user who
// switches must not find them ignored (an object protected by prune: disabled would be deleted). A policy holds when
// either name, on a label or an annotation, has its value (Flux's utils.AnyInMetadata): of two that disagree, the one
// that protects more wins, as in Flux.

const FERRY_KUSTOMIZE_PREFIX = "kustomize.ferry.dev/";
const FLUX_KUSTOMIZE_PREFIX = "kustomize.toolkit.fluxcd.io/";

export const FERRY_REQUESTED_AT = "reconcile.ferry.dev/requestedAt";
export const FLUX_REQUESTED_AT = "reconcile.fluxcd.io/requestedAt";

/** The Flux key that means the same as a kustomize.ferry.dev/ key. */
export function fluxTwin(ferryKey: string): string | undefined {
  return ferryKey.startsWith(FERRY_KUSTOMIZE_PREFIX) ? FLUX_KUSTOMIZE_PREFIX + ferryKey.slice(FERRY_KUSTOMIZE_PREFIX.length) : undefined;
}

/** The value of a policy key on an object's annotations or labels, under Ferry's name or else Flux's. */
export function policyEntry(
  metadata: { readonly labels?: Readonly<Record<string, string>>; readonly annotations?: Readonly<Record<string, string>> } | undefined,
  ferryKey: string,
): string | undefined {
  const twin = fluxTwin(ferryKey);
  const read = (key: string) => metadata?.annotations?.[key] ?? metadata?.labels?.[key];
  return read(ferryKey) ?? (twin ? read(twin) : undefined);
}

/**
 * Whether a policy key holds `value` (compared ignoring case) on a label or an annotation, under Ferry's name or Flux's:
 * fluxcd/pkg/ssa utils.AnyInMetadata, which Flux's apply and prune selectors use.
 */
export function policyMatches(
  metadata: { readonly labels?: Readonly<Record<string, string>>; readonly annotations?: Readonly<Record<string, string>> } | undefined,
  ferryKey: string,
  value: string,
): boolean {
  const wanted = value.toLowerCase();
  const keys = [ferryKey, fluxTwin(ferryKey)].filter((key): key is string => key !== undefined);
  return keys.some((key) => metadata?.labels?.[key]?.toLowerCase() === wanted || metadata?.annotations?.[key]?.toLowerCase() === wanted);
}

/**
 * The reconcile request to echo in status.lastHandledReconcileAt when an object carries either annotation or both:
 * the later of the two (tools write RFC 3339 times), Ferry's when they cannot be ordered. The answer depends on the
 * annotations alone, so it does not flip between reconciles; whoever set the newest request sees it echoed.
 */
export function pendingRequest(annotations: Readonly<Record<string, string>> | undefined): string | undefined {
  const ferry = annotations?.[FERRY_REQUESTED_AT];
  const flux = annotations?.[FLUX_REQUESTED_AT];
  if (ferry === undefined || flux === undefined) return ferry ?? flux;
  return Date.parse(flux) > Date.parse(ferry) || (Number.isNaN(Date.parse(ferry)) && !Number.isNaN(Date.parse(flux))) ? flux : ferry;
}

/** Whether a reconcile was requested between two versions of an object, under either name. */
export function requestChanged(
  current: Readonly<Record<string, string>> | undefined,
  previous: Readonly<Record<string, string>> | undefined,
): boolean {
  return current?.[FERRY_REQUESTED_AT] !== previous?.[FERRY_REQUESTED_AT] || current?.[FLUX_REQUESTED_AT] !== previous?.[FLUX_REQUESTED_AT];
}
