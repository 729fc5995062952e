/**
 * A token bucket for Ping calls: a flood of pings costs the member one comparison each once the
 * bucket is empty, instead of a reply each.
 */

/** Allows `perSecond` calls a second on average, with bursts of as many. */
export class PingBudget {
  private tokens: number;
  private refilledAt: number;

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = perSecond;
    this.refilledAt = now();
  }

  /** Takes one token; false when none is left (the call is to be refused). */
  take(): boolean {
    const now = this.now();
    this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.refilledAt) / 1000) * this.perSecond);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
