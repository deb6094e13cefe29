// Signing and verification errors. A failed verification names its reason; a reconciler retries it (the
// signature may arrive later) but never uses the unverified content.
import { type Disposition, FerryError } from "../errors.ts";

export class KeyError extends FerryError {
  readonly code = "KEY";
  readonly disposition: Disposition = "stall";
}

export type VerificationFailure
  = | "no-signature"
    | "wrong-key"
    | "digest-mismatch"
    | "tampered"
    | "identity-mismatch"
    | "untrusted"
    | "malformed";

export class VerificationError extends FerryError {
  readonly code = "VERIFICATION_FAILED";
  readonly disposition: Disposition = "retry";
  readonly reason: VerificationFailure;

  constructor(reason: VerificationFailure, message: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}
