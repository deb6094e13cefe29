// undici parses HTTP/1.1 with llhttp compiled to WebAssembly, instantiated once per process on the first
// connection. V8 starts it on its baseline compiler and, once the parser loop is hot, recompiles it with the
// optimising compiler on a background thread; a short command then waits for that compile before it can exit
// (podinfo pull on 2 cores: 20-25 ms over HTTP, ~40 ms over TLS). A registry client parses a handful of responses
// per command and streams bodies in large spans, for which the baseline code is plenty.
//
// V8 gives each instance its tier-up budget when the instance is created, so the budget is raised only while
// undici connects (llhttp is instantiated in that window) and restored after. Restoring matters: V8 rejects
// code caches, Node's own built-ins included, while any flag differs from its default.
import { subscribe } from "node:diagnostics_channel";
import { setFlagsFromString } from "node:v8";

/** V8's default for --wasm-tiering-budget (`node --v8-options`), restored once undici has connected. */
export const DEFAULT_TIERING_BUDGET = 13_000_000;
const BASELINE_ONLY_BUDGET = 2_000_000_000;

let installed = false;
let connecting = 0;

function connectStarted(): void {
  if (connecting++ === 0) setFlagsFromString(`--wasm-tiering-budget=${BASELINE_ONLY_BUDGET}`);
}

function connectEnded(): void {
  if (connecting > 0 && --connecting === 0) setFlagsFromString(`--wasm-tiering-budget=${DEFAULT_TIERING_BUDGET}`);
}

/** Whether the raised budget is in force (undici is connecting); for tests. */
export function baselineBudgetActive(): boolean {
  return connecting > 0;
}

/** Keeps undici's HTTP parser on V8's baseline tier for this process. Idempotent. */
export function keepHttpParserOnBaselineTier(): void {
  if (installed) return;
  installed = true;
  subscribe("undici:client:beforeConnect", connectStarted);
  subscribe("undici:client:connected", connectEnded);
  subscribe("undici:client:connectError", connectEnded);
}
