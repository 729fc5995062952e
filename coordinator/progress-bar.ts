/**
 * A one-line progress bar with ETA, redrawn in place on a terminal (stderr, so stdout stays
 * machine-readable). Off a terminal it prints nothing: logs get the per-epoch lines instead.
 */

/** Where the bar is drawn: a terminal stream (process.stderr) or anything shaped like one. */
export interface BarStream {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

export interface ProgressBarOptions {
  /** Characters of the bar itself. @default 24 */
  width?: number;
  /** Clock in ms. @default performance.now */
  now?: () => number;
}

export class ProgressBar {
  private lastDraw = Number.NEGATIVE_INFINITY;
  /** The first update seen: the rate counts only the steps done since then. */
  private origin?: { at: number; done: number };
  private readonly width: number;
  private readonly now: () => number;

  constructor(
    private readonly stream: BarStream = process.stderr,
    options: ProgressBarOptions = {},
  ) {
    this.width = options.width ?? 24;
    this.now = options.now ?? (() => performance.now());
  }

  get enabled(): boolean {
    return Boolean(this.stream.isTTY);
  }

  /**
   * Redraws at most ten times a second. `done`/`total` are in steps of the whole run. The ETA
   * is the rate of the steps this bar saw done times the steps left: a resumed run or a follower
   * attaching mid-run starts at step k, and the k steps of an earlier session took no time here.
   */
  update(done: number, total: number, label: string): void {
    if (!this.enabled) return;
    const now = this.now();
    this.origin ??= { at: now, done };
    if (now - this.lastDraw < 100 && done < total) return;
    this.lastDraw = now;
    const fraction = total > 0 ? Math.min(1, done / total) : 0;
    const filled = Math.round(fraction * this.width);
    const stepsSeen = done - this.origin.done;
    const eta = stepsSeen > 0 ? ((now - this.origin.at) / 1000 / stepsSeen) * (total - done) : Number.NaN;
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
