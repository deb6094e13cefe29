// Values Ferry's schemas accept because Flux's do, but that Ferry cannot act on yet. The reconcilers stall on them with
// these words, and `ferry migrate` refuses them with the same words before anything changes: a migrated object that
// can only stall would stop delivery that worked under Flux.

/** spec.decryption beyond age keys in a Secret (cloud KMS through a ServiceAccount, or no keys at all). */
export function unsupportedDecryption(
  decryption: { serviceAccountName?: string | undefined; secretRef?: unknown } | undefined,
): string | undefined {
  if (!decryption) return undefined;
  if (decryption.serviceAccountName) {
    return "spec.decryption.serviceAccountName is for cloud KMS access: Ferry decrypts SOPS with age keys from spec.decryption.secretRef only";
  }
  if (!decryption.secretRef) return "spec.decryption.secretRef is required: Ferry decrypts SOPS with the age keys (*.agekey) of a Secret";
  return undefined;
}

/** spec.verify.provider notation. */
export function unsupportedVerifyProvider(verify: { provider?: string | undefined } | undefined): string | undefined {
  return verify?.provider === "notation"
    ? "failed to verify the signature using provider 'notation': notation verification is not supported by Ferry yet; use provider 'cosign'"
    : undefined;
}

/**
 * spec.provider aws, azure or gcp with no static credentials means workload identity (IRSA/Pod Identity, Azure
 * Workload Identity, GKE Workload Identity) in Flux; Ferry cannot get such credentials yet.
 */
export function unsupportedProvider(provider: string | undefined, hasStaticCredentials: boolean): string | undefined {
  if (provider === undefined || provider === "generic" || hasStaticCredentials) return undefined;
  return `failed to get credential from ${provider}: workload identity for provider '${provider}' is not supported by Ferry yet; `
    + "use provider 'generic' with spec.secretRef or the imagePullSecrets of spec.serviceAccountName";
}
