/**
 * Label values that come from outside the relay (upstream error types, client-chosen model
 * names) must not grow the number of series without bound: the first `max` distinct values are
 * kept, later ones are reported as "other".
 */
export class BoundedLabel {
  private readonly seen = new Set<string>();

  constructor(
    private readonly max: number,
    private readonly maxLength = 80,
  ) {}

  value(raw: string | undefined | null): string {
    if (raw === undefined || raw === null || raw === '') return 'unknown';
    const v = raw.length > this.maxLength ? raw.slice(0, this.maxLength) : raw;
    if (this.seen.has(v)) return v;
    if (this.seen.size >= this.max) return 'other';
    this.seen.add(v);
    return v;
  }
}
