// Podman for e2e tests, with all of its state (images, containers, run files, network config) in one temporary
// directory, so a test run touches no system-wide container storage and leaves nothing behind. On the project's
// machines podman runs as root; crun refuses the hybrid cgroup layout, so runc with cgroupfs; vfs storage needs no
// overlay support from the filesystem underneath.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IN_CI } from "./binaries.ts";

function run(program: string, args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(program, [...args], { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${program} ${args.join(" ")} failed: ${stderr.trim() || error.message}`, { cause: error }));
      else resolve({ stdout, stderr });
    });
  });
}

const installed = (program: string) => run(program, ["--version"]).then(() => true, () => false);

/**
 * For `describe(name, { skip: await skipUnlessPodman() })`: podman and runc (Debian: apt-get install podman runc)
 * must be there. In CI a missing one fails the test run instead of skipping.
 */
export async function skipUnlessPodman(): Promise<string | false> {
  const missing = [];
  for (const program of ["podman", "runc"]) if (!(await installed(program))) missing.push(program);
  if (missing.length === 0) return false;
  const message = `${missing.join(" and ")} not installed (apt-get install -y podman runc)`;
  if (IN_CI) throw new Error(`${message}; CI may not skip tests for a missing peer`);
  return message;
}

export class Podman {
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async start(): Promise<Podman> {
    // Lower case only: `podman pull oci:DIR` names the image after DIR, and image names may not have capitals.
    const dir = join(tmpdir(), `ferry-podman-${randomBytes(6).toString("hex")}`);
    await mkdir(dir, { mode: 0o700 });
    await Promise.all(["root", "run", "tmp", "networks"].map((name) => mkdir(join(dir, name))));
    return new Podman(dir);
  }

  get globalFlags(): string[] {
    return [
      "--root", join(this.dir, "root"),
      "--runroot", join(this.dir, "run"),
      "--tmpdir", join(this.dir, "tmp"),
      "--network-config-dir", join(this.dir, "networks"),
      "--storage-driver", "vfs",
      "--cgroup-manager", "cgroupfs",
      "--runtime", "runc",
      "--events-backend", "none",
    ];
  }

  async podman(args: readonly string[]): Promise<string> {
    return (await run("podman", [...this.globalFlags, ...args])).stdout;
  }

  /** A container's output; podman prints what the container wrote to stderr on its own stderr. */
  async logs(container: string, tail?: number): Promise<string> {
    const { stdout, stderr } = await run("podman", [...this.globalFlags, "logs", ...(tail ? ["--tail", String(tail)] : []), container]);
    return stdout + stderr;
  }

  /** Loads the image the OCI layout names `tag` (the platform of this machine) and names it `name`. */
  async load(layout: string, tag: string, name: string): Promise<void> {
    const linked = join(this.dir, "layout");
    await symlink(layout, linked);
    const id = (await this.podman(["pull", "--quiet", `oci:${linked}:${tag}`])).trim().split("\n").at(-1) ?? "";
    await this.podman(["tag", id, name]);
  }

  /** Removes every container and image, then the directory. */
  async stop(): Promise<void> {
    await this.podman(["rm", "--all", "--force", "--time", "10"]).catch(() => undefined);
    await this.podman(["rmi", "--all", "--force"]).catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}
