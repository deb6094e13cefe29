#!/usr/bin/env node
// The ferry command: `ferry <verb> <noun> [flags]`, as flux spells its commands. Command modules are loaded
// lazily so that a short command does not pay for the registry client's start-up.
import { enableCompileCache } from "node:module";
import { FerryError } from "../src/errors.ts";
import { FERRY_VERSION } from "../src/version.ts";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from "./errors.ts";

// A command resolves to false when it ran but found a difference or failure worth exit code 1 (e.g. diff).
// V8 code caching for the lazily loaded command modules: it roughly halves the start-up of repeated runs in CI.
enableCompileCache();

type Command = (args: readonly string[]) => Promise<unknown>;

const artifactCommands = () => import("./commands/artifact.ts");

const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  "push artifact": {
    summary: "Package a directory or file as a Flux-format OCI artifact and push it",
    load: async () => (await artifactCommands()).pushArtifactCommand,
  },
  "pull artifact": {
    summary: "Download an artifact by digest, verify it, and extract it to --output",
    load: async () => (await artifactCommands()).pullArtifactCommand,
  },
  "tag artifact": {
    summary: "Add tags to an existing artifact",
    load: async () => (await artifactCommands()).tagArtifactCommand,
  },
  "list artifacts": {
    summary: "List a repository's artifacts with their digest, source and revision",
    load: async () => (await artifactCommands()).listArtifactsCommand,
  },
  "diff artifact": {
    summary: "Compare a local directory with an artifact, file by file",
    load: async () => (await artifactCommands()).diffArtifactCommand,
  },
  "build artifact": {
    summary: "Write the artifact's content layer (.tgz) without pushing it",
    load: async () => (await artifactCommands()).buildArtifactCommand,
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`);
  return [
    "Usage: ferry <command> [flags]",
    "",
    "Commands:",
    ...lines,
    `  ${"version".padEnd(width)}  Print the ferry version`,
    "",
    "Registry flags: --creds user:password, --insecure-registry, --ca-file, --cert-file, --key-file, --timeout 5m",
    "Exit codes: 0 success, 1 failure, 2 usage error.",
  ].join("\n");
}

async function main(argv: readonly string[]): Promise<number> {
  const [verb, noun, ...rest] = argv;
  if (verb === "version" || verb === "--version") {
    process.stdout.write(`ferry ${FERRY_VERSION}\n`);
    return EXIT_OK;
  }
  if (verb === undefined || verb === "help" || verb === "--help" || verb === "-h") {
    process.stdout.write(`${usage()}\n`);
    return EXIT_OK;
  }
  const command = COMMANDS[`${verb} ${noun ?? ""}`];
  if (!command) {
    process.stderr.write(`ferry: unknown command "${[verb, noun].filter(Boolean).join(" ")}"\n\n${usage()}\n`);
    return EXIT_USAGE;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(`ferry ${verb} ${noun}: ${command.summary}\n`);
    return EXIT_OK;
  }
  try {
    const succeeded = await (await command.load())(rest);
    return succeeded === false ? EXIT_FAILURE : EXIT_OK;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`✗ ${error.message}\n`);
      return EXIT_USAGE;
    }
    const message = error instanceof FerryError || error instanceof Error ? error.message : String(error);
    process.stderr.write(`✗ ${message}\n`);
    if (process.env.FERRY_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    return EXIT_FAILURE;
  }
}

process.exitCode = await main(process.argv.slice(2));
