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
