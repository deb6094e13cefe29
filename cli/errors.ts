// CLI-only errors: a usage error exits 2 (like flux, kubectl and the shell's own conventions); anything else 1.

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
