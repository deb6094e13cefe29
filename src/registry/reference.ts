// OCI references: `oci://host[:port]/path[:tag][@sha256:…]`, with Docker Hub's defaults and IPv6 hosts.
import { InvalidReferenceError } from "./errors.ts";

export const DOCKER_HUB = "docker.io";
/** Docker Hub's API lives on a different host than the name users write. */
const DOCKER_HUB_API = "registry-1.docker.io";

export interface Reference {
  /** Registry host as written (with port, IPv6 in brackets), Docker Hub normalised to `docker.io`. */
  readonly registry: string;
  /** Repository path inside the registry, e.g. `library/nginx` or `team/app/manifests`. */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
// IPv6 in brackets as distribution's grammar has it: hex digits and colons, so no zone identifiers and no IPv4-mapped
// forms (registries and other clients refuse those; a host of "[.]" used to pass here).
const HOST
  = /^(?:\[[0-9A-Fa-f:]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]{1,5})?$/;
/** distribution's NameTotalLengthMax: docker and other clients count the registry host in it, after Docker Hub's defaults. */
const MAX_NAME_LENGTH = 255;

function fail(input: string, reason: string): never {
  throw new InvalidReferenceError(input, reason);
}

/** A first path component is a registry host when it looks like one (has a dot or port, or is localhost). */
function looksLikeHost(component: string): boolean {
  return (
    component.includes(".")
    || component.includes(":")
    || component.startsWith("[")
    || component === "localhost"
  );
}

/**
 * Parses an artifact URL. With `requireScheme` (the CLI's artifact commands, like flux's) the `oci://` prefix is
 * mandatory; otherwise it is optional, so plain image references also parse.
 */
export function parseReference(input: string, options: { requireScheme?: boolean } = {}): Reference {
  let rest = input.trim();
  if (rest.startsWith("oci://")) rest = rest.slice("oci://".length);
  else if (options.requireScheme) fail(input, "URL must be in format 'oci://<domain>/<org>/<repo>'");
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rest)) fail(input, "only the oci:// scheme is supported");
  if (rest === "") fail(input, "reference is empty");

  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) fail(input, `digest "${digest}" must be sha256:<64 hex> or sha512:<128 hex>`);
  }

  // The tag is after the last colon that follows the last slash (a colon before it belongs to host:port).
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const tagColon = rest.indexOf(":", lastSlash + 1);
  if (tagColon !== -1 && !(lastSlash === -1 && rest.startsWith("["))) {
    tag = rest.slice(tagColon + 1);
    rest = rest.slice(0, tagColon);
    if (!TAG.test(tag)) fail(input, `tag "${tag}" must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  }

  const components = rest.split("/");
  let registry = DOCKER_HUB;
  const [first] = components;
  if (components.length > 1 && first !== undefined && looksLikeHost(first)) {
    registry = first;
    components.shift();
    if (!HOST.test(registry)) fail(input, `registry host "${registry}" is not a valid host[:port]`);
    const port = registry.match(/:(\d+)$/)?.[1];
    if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
      fail(input, `port ${port} is out of range`);
    }
  }
  if (registry === "index.docker.io" || registry === DOCKER_HUB_API) registry = DOCKER_HUB;
  if (components.length === 0 || components.some((component) => component === "")) {
    fail(input, "repository path is missing or has an empty component");
  }
  for (const component of components) {
    if (!COMPONENT.test(component)) {
      const hint = component !== component.toLowerCase() ? " (repository names must be lowercase)" : "";
      fail(input, `repository component "${component}" is invalid${hint}`);
    }
  }
  if (registry === DOCKER_HUB && components.length === 1) components.unshift("library");
  const repository = components.join("/");
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) {
    fail(input, `repository name with its registry is longer than ${MAX_NAME_LENGTH} characters`);
  }
  return {
    registry,
    repository,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}

/** Host to send API requests to. */
export function apiHost(reference: Pick<Reference, "registry">): string {
  return reference.registry === DOCKER_HUB ? DOCKER_HUB_API : reference.registry;
}

/** `host/repo[:tag][@digest]` without the scheme, as oras, crane and docker print it. */
export function formatReference(reference: Reference): string {
  const tag = reference.tag !== undefined ? `:${reference.tag}` : "";
  const digest = reference.digest !== undefined ? `@${reference.digest}` : "";
  return `${reference.registry}/${reference.repository}${tag}${digest}`;
}

export function formatUrl(reference: Reference): string {
  return `oci://${formatReference(reference)}`;
}

/** The same repository pinned to a digest (tag dropped), as used after resolving. */
export function withDigest(reference: Reference, digest: string): Reference {
  return { registry: reference.registry, repository: reference.repository, digest };
}

export function withTag(reference: Reference, tag: string): Reference {
  return { registry: reference.registry, repository: reference.repository, tag };
}
