/**
 * A one-line progress bar with ETA, redrawn in place on a terminal (stderr, so stdout stays
 * machine-readable). Off a terminal it prints nothing: logs get the per-epoch lines instead.
 */
export class ProgressBar {
  private lastDraw = 0;
  private readonly startedAt = performance.now();

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr, private readonly width = 24) {}

  get enabled(): boolean {
    return Boolean(this.stream.isTTY);
  }

  /** Redraws at most ten times a second. `done`/`total` are in steps of the whole run. */
  update(done: number, total: number, label: string): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.lastDraw < 100 && done < total) return;
    this.lastDraw = now;
    const fraction = total > 0 ? Math.min(1, done / total) : 0;
    const filled = Math.round(fraction * this.width);
    const elapsed = (now - this.startedAt) / 1000;
    const eta = done > 0 ? (elapsed / done) * (total - done) : Number.NaN;
    const bar = '#'.repeat(filled) + '-'.repeat(this.width - filled);
    this.stream.write(`\r[${bar}] ${(fraction * 100).toFixed(0).padStart(3)}% ${label} ETA ${formatDuration(eta)}\x1b[K`);
  }

  /** Clears the bar so that a normal line can be printed. */
  clear(): void {
    if (this.enabled) this.stream.write('\r\x1b[K');
  }
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const mm = String(m).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}
