// How decryption fails. Every failure names the file or object and what is wrong with it, never a value: a message
// ends up in the Kustomization's status, its events and the controller's log, which tenants and operators read.
import { type Disposition, FerryError } from "../errors.ts";

/**
 * A SOPS document cannot be decrypted: it is malformed, too big, tampered with (MAC mismatch), or no key in the
 * decryption Secret opens it. Only a new artifact or another key helps, so the Kustomization stalls.
 */
export class DecryptionError extends FerryError {
  readonly code = "DECRYPTION_FAILED";
  readonly disposition: Disposition = "stall";
}

/**
 * No identity of the decryption Secret opens the document. Retried rather than stalled: the fix is usually a new key
 * in the Secret, and Secrets are not watched.
 */
export class DecryptionKeyError extends FerryError {
  readonly code = "DECRYPTION_KEY_MISMATCH";
  readonly disposition: Disposition = "retry";
}

/** The spec or the key Secret asks for something Ferry does not do (PGP, KMS, Vault, key groups): say so, loudly. */
export class UnsupportedDecryptionError extends FerryError {
  readonly code = "DECRYPTION_UNSUPPORTED";
  readonly disposition: Disposition = "stall";
}
