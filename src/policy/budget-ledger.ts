import type { BudgetState } from './policy-schema.js';

/**
 * What each API key has spent in the current budget period. Kept apart from the pure policy: the server
 * reads `state(key, now)` into the route input, and charges the key once the cost is known. Periods are
 * fixed windows aligned to the Unix epoch (a daily budget renews at 00:00 UTC), so every router replica
 * agrees on when a period rolls over; a shared store (Redis) would replace this class past one process.
 */
export interface BudgetLedger {
  readonly period_s: number;
  readonly limit_usd: number;
  /** Adds `usd` (negative to refund an over-estimate; spending never drops below 0); returns what remains. */
  charge(key: string, usd: number, now: number): number;
  remaining(key: string, now: number): number;
  spent(key: string, now: number): number;
  /** The route input's `budget` for this key. */
  state(key: string, now: number): BudgetState & { period_start_ms: number; period_end_ms: number };
  /** Number of keys with spending in the current period. */
  readonly size: number;
}

export interface BudgetLedgerOptions {
  period_s: number;
  limit_usd: number;
}

export function createBudgetLedger(options: BudgetLedgerOptions): BudgetLedger {
  const { period_s, limit_usd } = options;
  if (!(period_s > 0) || !(limit_usd > 0)) {
    throw new RangeError(
      `budget ledger needs period_s > 0 and limit_usd > 0, got ${period_s} and ${limit_usd}`,
    );
  }
  const periodMs = period_s * 1000;
  const entries = new Map<string, { period: number; spent: number }>();
  let current = Number.NEGATIVE_INFINITY;

  // Entries of past periods are dropped as soon as time moves into a new period: one sweep per period
  // keeps memory bounded by the keys active in the current one. A clock stepping back stays in the
  // current period rather than handing every key a fresh budget.
  const advance = (now: number): number => {
    const period = Math.floor(now / periodMs);
    if (period > current) {
      current = period;
      for (const [key, entry] of entries) if (entry.period < period) entries.delete(key);
    }
    return current;
  };

  const spent = (key: string, now: number): number => {
    const period = advance(now);
    const entry = entries.get(key);
    return entry && entry.period === period ? entry.spent : 0;
  };

  return {
    period_s,
    limit_usd,
    charge(key, usd, now) {
      if (!Number.isFinite(usd)) throw new RangeError(`cannot charge a non-finite amount (${usd})`);
      const period = advance(now);
      const total = Math.max(0, spent(key, now) + usd);
      entries.set(key, { period, spent: total });
      return Math.max(0, limit_usd - total);
    },
    remaining: (key, now) => Math.max(0, limit_usd - spent(key, now)),
    spent,
    state(key, now) {
      const period = advance(now);
      return {
        remaining_usd: Math.max(0, limit_usd - spent(key, now)),
        limit_usd,
        period_start_ms: period * periodMs,
        period_end_ms: (period + 1) * periodMs,
      };
    },
    get size() {
      return entries.size;
    },
  };
}
