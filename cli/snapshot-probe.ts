import { startupSnapshot } from "node:v8";
import * as artifact from "./commands/artifact.ts";

startupSnapshot.setDeserializeMainFunction(async () => {
  const [verb, noun, ...rest] = process.argv.slice(1);
  const name = `${verb} ${noun}`;
  const command = name === "push artifact" ? artifact.pushArtifactCommand : artifact.pullArtifactCommand;
  await command(rest);
});
