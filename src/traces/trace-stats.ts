import { successOf, type Trace } from './trace-schema.js';

export interface RateCount {
  /** Records with an outcome for this tier (or, for the oracle, with any outcome). */
  n: number;
  successes: number;
  /** successes / n; NaN when n is 0. */
  rate: number;
}

export interface TraceGroupSummary {
  records: number;
  /** Per tier: its base success rate over the records that have its outcome. */
  tiers: Record<string, RateCount>;
  /** Any tier right, over records with at least one outcome: the ceiling a perfect router reaches. */
  oracle: RateCount;
}

export interface TraceSummary extends TraceGroupSummary {
  /** The same per `dataset` value; records without one count under "(none)". */
  datasets: Record<string, TraceGroupSummary>;
}

const NO_DATASET = '(none)';

class GroupCounter {
  records = 0;
  readonly #tiers = new Map<string, { n: number; successes: number }>();
  readonly #oracle = { n: 0, successes: 0 };

  add(trace: Trace): void {
    this.records += 1;
    let any = false;
    let anySuccess = false;
    for (const [tier, outcome] of Object.entries(trace.outcomes)) {
      const count = this.#tiers.get(tier) ?? { n: 0, successes: 0 };
      const success = successOf(outcome);
      count.n += 1;
      if (success) count.successes += 1;
      this.#tiers.set(tier, count);
      any = true;
      anySuccess ||= success;
    }
    if (any) {
      this.#oracle.n += 1;
      if (anySuccess) this.#oracle.successes += 1;
    }
  }

  summary(): TraceGroupSummary {
    const rate = ({ n, successes }: { n: number; successes: number }): RateCount => ({
      n,
      successes,
      rate: n === 0 ? Number.NaN : successes / n,
    });
    const tiers: Record<string, RateCount> = {};
    for (const [tier, count] of this.#tiers) tiers[tier] = rate(count);
    return { records: this.records, tiers, oracle: rate(this.#oracle) };
  }
}

/** Counts records, base success rate per tier and the oracle rate, overall and per dataset. */
export function summarizeTraces(traces: Iterable<Trace>): TraceSummary {
  const all = new GroupCounter();
  const byDataset = new Map<string, GroupCounter>();
  for (const trace of traces) {
    all.add(trace);
    const name = trace.dataset ?? NO_DATASET;
    let group = byDataset.get(name);
    if (!group) {
      group = new GroupCounter();
      byDataset.set(name, group);
    }
    group.add(trace);
  }
  const datasets: Record<string, TraceGroupSummary> = {};
  for (const [name, group] of byDataset) datasets[name] = group.summary();
  return { ...all.summary(), datasets };
}
