// The files of the image that no package provides: users and groups (root, nonroot 65532, nobody; no login shell
// exists), name-service configuration, os-release, the writable directories, the CA bundle as
// update-ca-certificates would write it, and dpkg status entries so image scanners see the Debian packages.
import { type Stanza, formatStanza } from "./debian-control.ts";
import { type LayerEntry } from "./tar.ts";

export const NONROOT = 65532;

export const PASSWD = [
  "root:x:0:0:root:/root:/sbin/nologin",
  `nonroot:x:${NONROOT}:${NONROOT}:nonroot:/home/nonroot:/sbin/nologin`,
  "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin",
  "",
].join("\n");

export const GROUP = ["root:x:0:", `nonroot:x:${NONROOT}:`, "nobody:x:65534:", ""].join("\n");

// glibc reads this for getpwuid (os.userInfo()) and getaddrinfo; without it, it guesses.
export const NSSWITCH = ["passwd: files", "group: files", "shadow: files", "hosts: files dns", "networks: files", "protocols: files", "services: files", ""].join("\n");

const OS_RELEASE = [
  "PRETTY_NAME=\"Ferry (Debian GNU/Linux 12 libraries)\"",
  "NAME=\"Debian GNU/Linux\"",
  "VERSION_ID=\"12\"",
  "VERSION=\"12 (bookworm)\"",
  "VERSION_CODENAME=bookworm",
  "ID=debian",
  "HOME_URL=\"https://www.debian.org/\"",
  "",
].join("\n");

const file = (path: string, content: string | Buffer, mode = 0o644): LayerEntry => ({ type: "file", path, mode, content: Buffer.from(content) });

/** Paths a Debian package installs that a container never reads: manuals and docs (copyright notices stay). */
export function keepPackagePath(path: string): boolean {
  if (/^usr\/share\/(man|info|lintian|bug|gdb)(\/|$)/.test(path)) return false;
  if (/^usr\/share\/doc\/[^/]+\/./.test(path)) return /^usr\/share\/doc\/[^/]+\/copyright$/.test(path);
  return true;
}

/**
 * /etc/ssl/certs/ca-certificates.crt from the ca-certificates package's entries: every certificate under
 * usr/share/ca-certificates, in byte order of path (as the package's postinst lists them), each ending in a newline.
 */
export function caBundle(entries: readonly LayerEntry[]): Buffer {
  const certificates = entries
    .filter((entry): entry is Extract<LayerEntry, { type: "file" }> => entry.type === "file" && /^usr\/share\/ca-certificates\/.+\.crt$/.test(entry.path))
    .sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  if (certificates.length === 0) throw new Error("the ca-certificates package holds no certificates under usr/share/ca-certificates");
  return Buffer.concat(certificates.map(({ content }) => (content.at(-1) === 0x0a ? content : Buffer.concat([content, Buffer.from("\n")]))));
}

const STATUS_FIELDS = ["Package", "Source", "Version", "Architecture", "Multi-Arch", "Maintainer", "Installed-Size", "Depends", "Section", "Priority", "Homepage", "Description"];

export function dpkgStatus(stanza: Stanza): string {
  return formatStanza(new Map([...stanza, ["Status", "install ok installed"]]), ["Package", "Status", ...STATUS_FIELDS.slice(1)]);
}

export function baseEntries(caCertificates: Buffer, packages: readonly Stanza[]): LayerEntry[] {
  const owned = { uid: NONROOT, gid: NONROOT };
  return [
    file("etc/passwd", PASSWD),
    file("etc/group", GROUP),
    file("etc/nsswitch.conf", NSSWITCH),
    file("etc/os-release", OS_RELEASE),
    file("etc/ssl/certs/ca-certificates.crt", caCertificates),
    { type: "directory", path: "tmp", mode: 0o1777 },
    { type: "directory", path: "root", mode: 0o700 },
    { type: "directory", path: "home/nonroot", mode: 0o700, ...owned },
    { type: "directory", path: "var/cache/ferry", mode: 0o700, ...owned },
    ...packages.map((stanza) => file(`var/lib/dpkg/status.d/${stanza.get("Package")}`, dpkgStatus(stanza))),
  ];
}
