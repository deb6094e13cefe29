// Parsing WWW-Authenticate challenges (RFC 7235) as registries send them.

export interface Challenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses one or more challenges: `Bearer realm="https://auth",service="registry",scope="repository:a:pull"`.
 * Scheme names are lower-cased; parameter values keep their case.
 */
export function parseChallenges(header: string): Challenge[] {
  const challenges: Array<{ scheme: string; params: Record<string, string> }> = [];
  const token = /\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\s*/y;
  let position = 0;
  while (position < header.length) {
    token.lastIndex = position;
    const scheme = token.exec(header);
    if (!scheme?.[1]) break;
    position = token.lastIndex;
    const current = { scheme: scheme[1].toLowerCase(), params: {} as Record<string, string> };
    challenges.push(current);
    // Parameters: name=value or name="quoted, with \" escapes", separated by commas.
    const param = /\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/y;
    for (;;) {
      param.lastIndex = position;
      const match = param.exec(header);
      if (!match?.[1]) break;
      current.params[match[1].toLowerCase()] = match[2] !== undefined ? match[2].replace(/\\(.)/g, "$1") : (match[3] ?? "");
      position = param.lastIndex;
    }
    // Skip a comma between challenges.
    while (position < header.length && /[\s,]/.test(header.charAt(position))) position++;
  }
  return challenges;
}
