// Fills --source and --revision from the environment when the user does not give them: GitHub Actions
// variables first, then the git checkout the command runs in. Flags always win.
import { promisify } from "node:util";

export interface SourceRevision {
  readonly source?: string;
  readonly revision?: string;
}

export function fromGitHubActions(env: NodeJS.ProcessEnv): SourceRevision {
  if (env.GITHUB_ACTIONS !== "true" || !env.GITHUB_REPOSITORY || !env.GITHUB_SHA) return {};
  const server = env.GITHUB_SERVER_URL ?? "https://github.com";
  const ref = env.GITHUB_REF_NAME ?? env.GITHUB_HEAD_REF;
  return {
    source: `${server}/${env.GITHUB_REPOSITORY}`,
    revision: ref ? `${ref}@sha1:${env.GITHUB_SHA}` : `sha1:${env.GITHUB_SHA}`,
  };
}

async function git(args: string[], cwd: string): Promise<string | undefined> {
  // node:child_process is loaded only when git is asked: ~2.5 ms of every push that has --source and --revision.
  const exec = promisify(process.getBuiltinModule("node:child_process").execFile);
  try {
    return (await exec("git", args, { cwd, timeout: 10_000 })).stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

/** `<branch|tag>@sha1:<commit>` and the origin URL of the checkout containing `cwd`, if any. */
export async function fromGitCheckout(cwd: string): Promise<SourceRevision> {
  const sha = await git(["rev-parse", "HEAD"], cwd);
  if (!sha) return {};
  const ref = (await git(["describe", "--tags", "--exact-match", "HEAD"], cwd)) ?? (await git(["symbolic-ref", "--short", "-q", "HEAD"], cwd));
  const source = await git(["remote", "get-url", "origin"], cwd);
  return { revision: ref ? `${ref}@sha1:${sha}` : `sha1:${sha}`, ...(source ? { source } : {}) };
}

export async function detectSourceRevision(cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<SourceRevision> {
  const actions = fromGitHubActions(env);
  if (actions.source && actions.revision) return actions;
  return fromGitCheckout(cwd);
}
