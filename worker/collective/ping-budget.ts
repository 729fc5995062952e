/**
 * Token buckets for Ping calls, one per peer host: a flood of pings costs the member one
 * comparison each once its host's bucket is empty, instead of a reply each, and leaves the
 * other hosts' pings (a ring neighbour connecting) answered.
 */
import { hostOf } from './peer-streams.ts';

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
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** True when the bucket is full again: its host has not pinged for a while. */
  idle(): boolean {
    this.refill();
    return this.tokens >= this.perSecond;
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.refilledAt) / 1000) * this.perSecond);
    this.refilledAt = now;
  }
}

/**
 * A {@link PingBudget} per peer host. The map is bounded: past `maxHosts` hosts, the idle ones
 * are forgotten, and while every one of them is busy a new host's pings are refused (so many
 * source addresses cannot make the member keep a bucket each).
 */
export class PeerPingBudgets {
  private readonly budgets = new Map<string, PingBudget>();

  constructor(
    private readonly perSecond: number,
    private readonly maxHosts = 1024,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one token of `peer`'s host (`host:port`, as grpc-js `getPeer()` gives it); false: refuse the call. */
  take(peer: string): boolean {
    const host = hostOf(peer);
    let budget = this.budgets.get(host);
    if (!budget) {
      if (this.budgets.size >= this.maxHosts) this.forgetIdle();
      if (this.budgets.size >= this.maxHosts) return false;
      budget = new PingBudget(this.perSecond, this.now);
      this.budgets.set(host, budget);
    }
    return budget.take();
  }

  private forgetIdle(): void {
    for (const [host, budget] of this.budgets) if (budget.idle()) this.budgets.delete(host);
  }
}
