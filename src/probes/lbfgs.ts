/**
 * Limited-memory BFGS for smooth convex objectives (the L2-penalised logistic loss, here). Nocedal &
 * Wright, "Numerical Optimization" (2nd ed., 2006): the two-loop recursion is Algorithm 7.4, the outer
 * loop Algorithm 7.5, with the initial Hessian scaling γ = sᵀy / yᵀy of their eq. 7.20. The line search is
 * backtracking to the Armijo condition (their Algorithm 3.1) rather than a full Wolfe search: on a
 * strictly convex objective sᵀy > 0 holds for any step, so the curvature condition is not needed to keep
 * the BFGS update positive definite, and the unit step is accepted almost always.
 *
 * Why not full Newton: the Hessian of a 2,600-feature probe is 2,600² and every iteration would need
 * n·d² work to form it; L-BFGS needs two passes over the data per iteration.
 */

/** Writes ∇f(x) into `gradient` and returns f(x). */
export type Objective = (x: Float64Array, gradient: Float64Array) => number;

export interface LbfgsOptions {
  /** Default 300. */
  maxIterations?: number;
  /** Correction pairs kept (default 10; 3–20 is the range N&W recommend). */
  memory?: number;
  /** Stop when max |∂f/∂xᵢ| falls below this (default 1e-5). */
  gradientTolerance?: number;
  /** Stop when a step lowers f by less than this share of |f| (default 1e-10). */
  relativeTolerance?: number;
}

export interface LbfgsResult {
  x: Float64Array;
  value: number;
  iterations: number;
  evaluations: number;
  converged: boolean;
  reason: 'gradient' | 'no-progress' | 'max-iterations' | 'line-search-failed';
}

function dot(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i += 1) sum += a[i]! * b[i]!;
  return sum;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i += 1) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

export function minimizeLbfgs(
  objective: Objective,
  start: Float64Array,
  options: LbfgsOptions = {},
): LbfgsResult {
  const maxIterations = options.maxIterations ?? 300;
  const memory = options.memory ?? 10;
  const gradientTolerance = options.gradientTolerance ?? 1e-5;
  const relativeTolerance = options.relativeTolerance ?? 1e-10;
  const n = start.length;

  let x = Float64Array.from(start);
  let g = new Float64Array(n);
  let f = objective(x, g);
  let evaluations = 1;
  const sHistory: Float64Array[] = [];
  const yHistory: Float64Array[] = [];
  const rhoHistory: number[] = [];
  const alpha = new Float64Array(memory);
  const direction = new Float64Array(n);
  let xNext = new Float64Array(n);
  let gNext = new Float64Array(n);

  const result = (iterations: number, reason: LbfgsResult['reason']): LbfgsResult => ({
    x,
    value: f,
    iterations,
    evaluations,
    converged: reason === 'gradient' || reason === 'no-progress',
    reason,
  });

  for (let iteration = 0; iteration < maxIterations; iteration += 1) {
    if (maxAbs(g) <= gradientTolerance) return result(iteration, 'gradient');

    // Two-loop recursion: direction = −H·g with H the implicit inverse-Hessian approximation.
    for (let i = 0; i < n; i += 1) direction[i] = -g[i]!;
    const m = sHistory.length;
    for (let k = m - 1; k >= 0; k -= 1) {
      const a = rhoHistory[k]! * dot(sHistory[k]!, direction);
      alpha[k] = a;
      const y = yHistory[k]!;
      for (let i = 0; i < n; i += 1) direction[i]! -= a * y[i]!;
    }
    if (m > 0) {
      const gamma = dot(sHistory[m - 1]!, yHistory[m - 1]!) / dot(yHistory[m - 1]!, yHistory[m - 1]!);
      for (let i = 0; i < n; i += 1) direction[i]! *= gamma;
    }
    for (let k = 0; k < m; k += 1) {
      const b = rhoHistory[k]! * dot(yHistory[k]!, direction);
      const s = sHistory[k]!;
      const coefficient = alpha[k]! - b;
      for (let i = 0; i < n; i += 1) direction[i]! += coefficient * s[i]!;
    }

    let slope = dot(g, direction);
    if (!(slope < 0)) {
      // Not a descent direction (only possible through rounding): restart from steepest descent.
      sHistory.length = 0;
      yHistory.length = 0;
      rhoHistory.length = 0;
      for (let i = 0; i < n; i += 1) direction[i] = -g[i]!;
      slope = dot(g, direction);
    }
    // Without curvature information the first step is scaled to unit length (N&W §7.2 practice).
    let step = m === 0 ? Math.min(1, 1 / Math.sqrt(-slope)) : 1;
    let fNext = Number.POSITIVE_INFINITY;
    let accepted = false;
    for (let trial = 0; trial < 40; trial += 1) {
      for (let i = 0; i < n; i += 1) xNext[i] = x[i]! + step * direction[i]!;
      fNext = objective(xNext, gNext);
      evaluations += 1;
      if (fNext <= f + 1e-4 * step * slope) {
        accepted = true;
        break;
      }
      step *= 0.5;
    }
    if (!accepted) return result(iteration, 'line-search-failed');

    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i += 1) {
      s[i] = xNext[i]! - x[i]!;
      y[i] = gNext[i]! - g[i]!;
    }
    const sy = dot(s, y);
    // Skipping pairs with no positive curvature keeps H positive definite (N&W §7.2, after eq. 7.19).
    if (sy > 1e-12 * dot(y, y)) {
      if (sHistory.length === memory) {
        sHistory.shift();
        yHistory.shift();
        rhoHistory.shift();
      }
      sHistory.push(s);
      yHistory.push(y);
      rhoHistory.push(1 / sy);
    }
    const decrease = f - fNext;
    [x, xNext] = [xNext, x];
    [g, gNext] = [gNext, g];
    f = fNext;
    if (decrease <= relativeTolerance * Math.max(Math.abs(f), 1e-300)) {
      return result(iteration + 1, maxAbs(g) <= gradientTolerance ? 'gradient' : 'no-progress');
    }
  }
  return result(maxIterations, 'max-iterations');
}
