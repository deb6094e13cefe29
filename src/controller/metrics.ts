// Prometheus metrics for the controller, rendered in the text exposition format.

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

function labels(values: Record<string, string>): string {
  const entries = Object.entries(values);
  return entries.length === 0 ? "" : `{${entries.map(([key, value]) => `${key}="${value.replace(/["\\\n]/g, "_")}"`).join(",")}}`;
}

export class ControllerMetrics {
  readonly #reconciles = new Map<string, number>();
  readonly #durations = new Map<string, { buckets: number[]; sum: number; count: number }>();
  queueDepth: () => number = () => 0;

  recordReconcile(kind: string, result: "success" | "error", seconds: number): void {
    const key = JSON.stringify({ kind, result });
    this.#reconciles.set(key, (this.#reconciles.get(key) ?? 0) + 1);
    const durationKey = JSON.stringify({ kind });
    const histogram = this.#durations.get(durationKey) ?? { buckets: DURATION_BUCKETS.map(() => 0), sum: 0, count: 0 };
    DURATION_BUCKETS.forEach((bound, index) => {
      if (seconds <= bound) histogram.buckets[index] = (histogram.buckets[index] ?? 0) + 1;
    });
    histogram.sum += seconds;
    histogram.count += 1;
    this.#durations.set(durationKey, histogram);
  }

  render(): string {
    const lines = [
      "# HELP ferry_reconcile_total Reconciles by kind and result.",
      "# TYPE ferry_reconcile_total counter",
      ...[...this.#reconciles].map(([key, count]) => `ferry_reconcile_total${labels(JSON.parse(key))} ${count}`),
      "# HELP ferry_reconcile_duration_seconds Reconcile duration.",
      "# TYPE ferry_reconcile_duration_seconds histogram",
    ];
    for (const [key, histogram] of this.#durations) {
      const base = JSON.parse(key) as Record<string, string>;
      DURATION_BUCKETS.forEach((bound, index) => lines.push(`ferry_reconcile_duration_seconds_bucket${labels({ ...base, le: String(bound) })} ${histogram.buckets[index]}`));
      lines.push(`ferry_reconcile_duration_seconds_bucket${labels({ ...base, le: "+Inf" })} ${histogram.count}`);
      lines.push(`ferry_reconcile_duration_seconds_sum${labels(base)} ${histogram.sum}`);
      lines.push(`ferry_reconcile_duration_seconds_count${labels(base)} ${histogram.count}`);
    }
    lines.push("# HELP ferry_workqueue_depth Keys waiting to be reconciled.", "# TYPE ferry_workqueue_depth gauge", `ferry_workqueue_depth ${this.queueDepth()}`);
    return `${lines.join("\n")}\n`;
  }
}
