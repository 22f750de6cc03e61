import { InvalidMetricInputError } from '../errors.js';
import { createRng } from '../seeded-rng.js';
import { quantile } from './quantile.js';

/**
 * Paired percentile bootstrap for the difference of a statistic between two methods scored on the same
 * rows: each resample draws the rows with replacement (seeded) and recomputes both methods' statistic on
 * the same draw, so the interval reflects how the two differ on prompts like these — not how much each
 * moves on its own, which is larger and mostly shared. Pure; no I/O.
 */
export interface BootstrapSettings {
  resamples: number;
  seed: number;
  /** e.g. 0.95. */
  confidence: number;
}

export interface PairedDifference {
  /** Statistic of method A, of method B, and A − B, on the rows as they are. */
  a: number;
  b: number;
  difference: number;
  /** Percentile interval of A − B over the resamples (resamples where either is undefined are skipped). */
  low: number;
  high: number;
  /** Resamples where both statistics were defined. */
  resamples: number;
}

/**
 * `statistic(subset)` returns, for each of several statistics, A's and B's value on the rows of `subset`
 * (indices into 0 … n − 1, repeats allowed); NaN marks a value undefined on that draw (e.g. AUROC with
 * one class). Several statistics share each draw, so they can share the work of computing them.
 */
export function pairedBootstrap(
  n: number,
  statistic: (subset: readonly number[]) => { a: readonly number[]; b: readonly number[] },
  settings: BootstrapSettings,
): PairedDifference[] {
  if (!(n > 0)) throw new InvalidMetricInputError('paired bootstrap', 'no rows');
  if (!(settings.confidence > 0 && settings.confidence < 1)) {
    throw new InvalidMetricInputError('paired bootstrap', `confidence ${settings.confidence}`);
  }
  const { a, b } = statistic(Array.from({ length: n }, (_, i) => i));
  const rng = createRng(settings.seed);
  const differences = a.map((): number[] => []);
  const draw = new Array<number>(n);
  for (let r = 0; r < settings.resamples; r += 1) {
    for (let k = 0; k < n; k += 1) draw[k] = rng.int(n);
    const values = statistic(draw);
    for (const [s, list] of differences.entries()) {
      const [x, y] = [values.a[s]!, values.b[s]!];
      if (Number.isFinite(x) && Number.isFinite(y)) list.push(x - y);
    }
  }
  const alpha = (1 - settings.confidence) / 2;
  return differences.map((list, s) => {
    list.sort((p, q) => p - q);
    return {
      a: a[s]!,
      b: b[s]!,
      difference: a[s]! - b[s]!,
      low: quantile(list, alpha),
      high: quantile(list, 1 - alpha),
      resamples: list.length,
    };
  });
}
