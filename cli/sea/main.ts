// The single executable's entry (cli/sea/build.ts): the CLI's main, and the command modules the snapshot pre-loads.
// "ferry-sea:cli" is cli/ferry.ts with main exported rather than run at its top level (see build.ts).
// @ts-expect-error resolved by cli/sea/build.ts's ferry-main plugin
import { main } from "ferry-sea:cli";
import { type Main, start } from "./start.ts";

start(main as Main, async () => {
  await import("../commands/artifact.ts");
  if (process.env.FERRY_SEA_WARM_UP !== "0") await (await import("./warm-up.ts")).warmUp();
});
