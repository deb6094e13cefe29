// Builds ferry-sandbox (src/sandbox/main.go), the confinement the controller runs kustomize in, into dist/ beside
// the bundle. It needs Go; without Go the CLI still works and only `ferry controller` will refuse to start.
import { execFile } from "node:child_process";
import { mkdir, rename } from "node:fs/promises";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const outdir = join(root, "dist");
const partial = join(outdir, ".ferry-sandbox.partial");

await mkdir(outdir, { recursive: true });
const env = { ...process.env, CGO_ENABLED: "0", GOTOOLCHAIN: "local", GOFLAGS: "-buildvcs=false" };
const built = await new Promise<boolean>((resolve, reject) => {
  execFile("go", ["build", "-trimpath", "-ldflags", "-s -w", "-o", partial, "."], { cwd: join(root, "src", "sandbox"), env }, (error, _stdout, stderr) => {
    if (!error) resolve(true);
    else if ((error as NodeJS.ErrnoException).code === "ENOENT") resolve(false);
    else reject(new Error(`building ferry-sandbox failed:\n${stderr}`));
  });
});
if (built) {
  await rename(partial, join(outdir, "ferry-sandbox"));
  process.stderr.write(`built ${join(outdir, "ferry-sandbox")}\n`);
} else {
  process.stderr.write("Go not found: dist/ferry-sandbox not built, so `ferry controller` will not start (it confines kustomize with it)\n");
}
