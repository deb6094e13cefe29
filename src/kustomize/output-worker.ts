// The worker side of reading kustomize's output (see output.ts): YAML parsing and post-build substitution run here,
// off the controller's event loop, under the heap limit and wall clock the main thread set.
import { parentPort, workerData } from "node:worker_threads";
import { FerryError } from "../errors.ts";
import { parseManifests } from "./build.ts";
import { substituteManifests } from "./substitute.ts";

export interface OutputJob {
  readonly text: string;
  readonly origin: string;
  readonly variables: Readonly<Record<string, string>>;
  readonly strict: boolean;
  /** Flux's substituteStrategy Always: substitute even when no variable is defined (defaults still apply). */
  readonly always?: boolean;
}

/** The result handed to the main thread: as much as kustomize may print (MAX_KUSTOMIZE_OUTPUT_BYTES). */
const MAX_RESULT_CHARACTERS = 64 * 1024 * 1024;

/** A typed failure crosses the thread boundary as its class name and message, and is rebuilt on the other side. */
export type OutputResult = { readonly json: string } | { readonly error: { readonly name: string; readonly message: string } };

function run(job: OutputJob): OutputResult {
  try {
    const objects = Object.keys(job.variables).length === 0 && !job.always
      ? parseManifests(job.text, job.origin)
      : substituteManifests(job.text, job.variables, { strict: job.strict });
    // One string is far cheaper to hand back than a structured clone of thousands of objects. Its size is bounded:
    // the main thread parses it, and only substituted values can make it larger than kustomize's own output.
    const json = JSON.stringify(objects);
    if (json.length > MAX_RESULT_CHARACTERS) {
      return { error: { name: "SubstitutionError", message: `${job.origin} is over ${MAX_RESULT_CHARACTERS / 1024 / 1024} Mi characters once substituted` } };
    }
    return { json };
  } catch (error) {
    const name = error instanceof FerryError ? error.name : "BuildError";
    return { error: { name, message: (error as Error).message } };
  }
}

parentPort?.postMessage(run(workerData as OutputJob));
