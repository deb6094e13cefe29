// Artifact errors: bad input to build from, and archives that are unsafe to extract.
import { type Disposition, FerryError } from "../errors.ts";

/** The directory or file to package cannot be archived as asked (symlink, special file, unreadable path). */
export class ArtifactInputError extends FerryError {
  readonly code = "ARTIFACT_INPUT";
  readonly disposition: Disposition = "stall";
}

/** An archive that would write outside its root, holds devices, or exceeds size or file-count limits. */
export class UnsafeArchiveError extends FerryError {
  readonly code = "UNSAFE_ARCHIVE";
  readonly disposition: Disposition = "stall";
}

/** The artifact is not in a format Ferry can read (wrong layer count or media type, unreadable config). */
export class ArtifactFormatError extends FerryError {
  readonly code = "ARTIFACT_FORMAT";
  readonly disposition: Disposition = "stall";
}
