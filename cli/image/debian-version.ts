// Debian version ordering (deb-version(7)): [epoch:]upstream[-revision], compared part by part with dpkg's rules,
// where `~` sorts before everything, even the end of the string. Needed to pick the newest of a package offered by
// bookworm, bookworm-updates and bookworm-security.

interface Version {
  readonly epoch: number;
  readonly upstream: string;
  readonly revision: string;
}

function parse(version: string): Version {
  const colon = version.indexOf(":");
  const epoch = colon === -1 ? 0 : Number(version.slice(0, colon));
  const rest = colon === -1 ? version : version.slice(colon + 1);
  const dash = rest.lastIndexOf("-");
  return { epoch, upstream: dash === -1 ? rest : rest.slice(0, dash), revision: dash === -1 ? "" : rest.slice(dash + 1) };
}

/** dpkg's weight of one non-digit character: `~` first, then the end, then letters, then the rest. */
function order(character: string | undefined): number {
  if (character === undefined) return 0;
  if (character === "~") return -1;
  if (/[A-Za-z]/.test(character)) return character.charCodeAt(0);
  return character.charCodeAt(0) + 256;
}

function comparePart(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    // The non-digit prefixes, character by character.
    while ((i < a.length && !/\d/.test(a[i] ?? "")) || (j < b.length && !/\d/.test(b[j] ?? ""))) {
      const left = /\d/.test(a[i] ?? "") ? undefined : a[i];
      const right = /\d/.test(b[j] ?? "") ? undefined : b[j];
      const difference = order(left) - order(right);
      if (difference !== 0) return difference;
      i++;
      j++;
    }
    // Then the digit runs, as numbers.
    const startA = i;
    const startB = j;
    while (/\d/.test(a[i] ?? "")) i++;
    while (/\d/.test(b[j] ?? "")) j++;
    const difference = Number(a.slice(startA, i) || "0") - Number(b.slice(startB, j) || "0");
    if (difference !== 0) return difference;
  }
  return 0;
}

/** Negative when a < b, positive when a > b, 0 when equal. */
export function compareDebianVersions(a: string, b: string): number {
  const left = parse(a);
  const right = parse(b);
  return Math.sign(left.epoch - right.epoch || comparePart(left.upstream, right.upstream) || comparePart(left.revision, right.revision));
}
