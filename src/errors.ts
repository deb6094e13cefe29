// The error taxonomy every module shares: each error says how a reconciler should react to it.
//   stall: the spec or input is wrong; retrying cannot help until someone changes it.
//   wait:  a dependency is not ready yet; try again after a delay.
//   retry: a transient failure; retry with backoff.

export type Disposition = "stall" | "wait" | "retry";

export abstract class FerryError extends Error {
  abstract readonly code: string;
  abstract readonly disposition: Disposition;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}
