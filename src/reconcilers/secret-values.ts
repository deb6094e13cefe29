// Values a reconcile must never report. An apiserver validation error quotes the value it refused, so a Secret's
// value substituted into a label, or a Secret in the build the server rejects, would otherwise reach status, events
// and logs, where every reader of the Kustomization sees it.

/** Shorter values are common words and numbers; masking them would garble every message, and they protect nothing. */
const MIN_REDACTED_LENGTH = 4;
const MASK = "[redacted]";

export class SecretValues {
  readonly #values = new Set<string>();

  /**
   * A value and the forms it takes on its way into a message: with its line breaks dropped (substitution joins a
   * multi-line value into one line), escaped as JSON and Go quote it (the apiserver's "Invalid value: \"…\""), and
   * line by line, so that no piece of a multi-line value survives whole.
   */
  add(value: string): void {
    const joined = value.replace(/\r?\n/g, "");
    const forms = [value, joined, JSON.stringify(value).slice(1, -1), JSON.stringify(joined).slice(1, -1), ...value.split(/\r?\n/)];
    for (const form of forms) if (form.trim().length >= MIN_REDACTED_LENGTH) this.#values.add(form);
  }

  /** A Secret of the build: its data values as sent (base64) and decoded, and its stringData values. */
  addSecretObject(object: { apiVersion?: unknown; kind?: unknown; data?: unknown; stringData?: unknown }): void {
    if (object.kind !== "Secret" || object.apiVersion !== "v1") return;
    for (const value of Object.values(asRecord(object.data))) {
      if (typeof value !== "string") continue;
      this.add(value);
      this.add(Buffer.from(value, "base64").toString("utf8"));
    }
    for (const value of Object.values(asRecord(object.stringData))) if (typeof value === "string") this.add(value);
  }

  /** `text` with every known value masked, longest first so that a value containing another is masked whole. */
  redact(text: string): string {
    let redacted = text;
    for (const value of [...this.#values].sort((a, b) => b.length - a.length)) redacted = redacted.replaceAll(value, MASK);
    return redacted;
  }
}

function asRecord(value: unknown): Record<string, unknown> {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}
