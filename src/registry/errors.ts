// Registry errors, named after what went wrong from the user's point of view.
import { type Disposition, FerryError } from "../errors.ts";

export class InvalidReferenceError extends FerryError {
  readonly code = "INVALID_REFERENCE";
  readonly disposition: Disposition = "stall";
  readonly input: string;

  constructor(input: string, reason: string) {
    super(`invalid reference "${input}": ${reason}`);
    this.input = input;
  }
}

/** Credentials were missing, wrong or expired (HTTP 401 after authenticating). Flux retries these too. */
export class AuthenticationError extends FerryError {
  readonly code = "AUTHENTICATION_FAILED";
  readonly disposition: Disposition = "retry";
}

/** The registry understood who we are and said no (HTTP 403). */
export class AccessDeniedError extends FerryError {
  readonly code = "ACCESS_DENIED";
  readonly disposition: Disposition = "retry";
}

export class NotFoundError extends FerryError {
  readonly code = "NOT_FOUND";
  readonly disposition: Disposition = "retry";
}

/** Content did not match its digest or declared size: tampering, corruption or a truncated transfer. */
export class IntegrityError extends FerryError {
  readonly code = "INTEGRITY";
  readonly disposition: Disposition = "retry";
}

/** Content exceeds a configured limit; retrying fetches the same oversized content. */
export class LimitExceededError extends FerryError {
  readonly code: string = "LIMIT_EXCEEDED";
  readonly disposition: Disposition = "stall";
}

/** A registry answer (error document, token, manifest, tag list) longer than Ferry reads; the rest was never read. */
export class ResponseTooLargeError extends LimitExceededError {
  override readonly code: string = "RESPONSE_TOO_LARGE";
  readonly limit: number;

  constructor(message: string, limit: number) {
    super(message);
    this.limit = limit;
  }
}

/** The registry answered with an error status we do not map to something more specific. */
export class RegistryResponseError extends FerryError {
  readonly code = "REGISTRY_ERROR";
  readonly disposition: Disposition = "retry";
  readonly status: number;

  constructor(message: string, status: number, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
  }
}

/** Connection, TLS or timeout failures, after retries. */
export class TransportError extends FerryError {
  readonly code = "TRANSPORT";
  readonly disposition: Disposition = "retry";
}

/** Registry configuration that cannot work: unreadable CA file, bad --creds, a credential helper that fails. */
export class RegistryConfigError extends FerryError {
  readonly code = "REGISTRY_CONFIG";
  readonly disposition: Disposition = "stall";
}
