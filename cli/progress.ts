// Transfer progress on an interactive terminal; silent in CI and when stderr is not a TTY.

export interface Progress {
  update(transferred: number, total: number): void;
  done(): void;
}

function humanBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function createProgress(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  const interactive = stream.isTTY === true && !process.env.CI;
  if (!interactive) return { update: () => {}, done: () => {} };
  let lastDraw = 0;
  let drawn = false;
  return {
    update(transferred, total) {
      const now = Date.now();
      if (now - lastDraw < 100 && transferred < total) return;
      lastDraw = now;
      const fraction = total > 0 ? Math.min(1, transferred / total) : 1;
      const width = 24;
      const filled = Math.round(fraction * width);
      const bar = `${"█".repeat(filled)}${"░".repeat(width - filled)}`;
      stream.write(`\r${label} ${bar} ${(fraction * 100).toFixed(0).padStart(3)}% ${humanBytes(transferred)}/${humanBytes(total)}\u001b[K`);
      drawn = true;
    },
    done() {
      if (drawn) stream.write("\r\u001b[K");
    },
  };
}
