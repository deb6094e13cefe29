#!/usr/bin/env node
// The ferry command. Commands arrive with the issues that build them; until then only `version` exists.
import { FERRY_VERSION } from "../src/version.ts";

const EXIT_OK = 0;
const EXIT_USAGE = 2;

const usage = `Usage: ferry <command>

Commands:
  version    Print the ferry version

The artifact, source and kustomization commands are not implemented yet.`;

function main(argv: readonly string[]): number {
  const [command] = argv;
  if (command === "version" || command === "--version") {
    process.stdout.write(`ferry ${FERRY_VERSION}\n`);
    return EXIT_OK;
  }
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(`${usage}\n`);
    return EXIT_OK;
  }
  process.stderr.write(`ferry: unknown command "${command}"\n\n${usage}\n`);
  return EXIT_USAGE;
}

process.exitCode = main(process.argv.slice(2));
