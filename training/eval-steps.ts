import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ChartSpec, lineChartSpec, renderChartSvg } from '../src/charts/render-svg.js';
import { EncoderHost } from '../src/encoder/encoder-host.js';
import { TrainingDataError } from '../src/errors.js';
import { DEFAULT_ENCODER_MODEL } from '../src/models/manifest.js';
import { resolveCachedModel } from '../src/models/manifest-registry.js';
import { loadProbeBundle, type ProbeBundle } from '../src/probes/probe-bundle.js';
import { predictProbesBatch } from '../src/probes/probe-predict.js';
import { stepPrefix } from '../src/steps/segment-steps.js';
import {
  examplesByTrajectory,
  type StepExample,
  type StepTrajectory,
  stepExamples,
} from '../src/steps/step-examples.js';
import {
  DEFAULT_TAUS,
  type SimulationReport,
  type SimulationTrace,
  simulateSweep,
} from '../src/steps/step-simulation.js';
import { readJsonl, readTraces } from '../src/traces/jsonl-reader.js';
import { successOf, type Trace } from '../src/traces/trace-schema.js';
import {
  DEFAULT_STEP_DEEPEST_LAYER,
  defaultStepStore,
  extractStepActivations,
  inspectStepStore,
} from './extract-step-activations.js';
import { loadStepData, stepFeatures } from './step-data.js';
import { type StepAurocRow, StepScoreSchema, stepAurocByK } from './step-scores.js';
import { DEFAULT_PRICES, type TierPrice } from './tier-costs.js';

/**
 * `mechroute eval-steps`: a step-probe bundle on a trace file — step-prefix AUROC by step index, and the
 * offline per-step routing simulation (src/steps/step-simulation.ts) swept over τ against request-level
 * routing and the two single tiers. By default only the bundle's held-out problems are scored.
 */
export interface EvalStepsOptions {
  probes: string;
  tracesFile: string;
  /**
   * Step store (default: train --steps's default store, or one deep enough for the bundle's layer). Prefixes of the
   * scored problems it lacks are encoded into it first, as `train --steps --extract` would.
   */
  storeDir?: string;
  model?: string;
  /** Progress of encoding the missing step prefixes (texts). */
  onProgress?: (done: number, total: number, elapsedMs: number) => void;
  /** Default: the bundle's reference tier (its difficulty tier), the cheapest it was trained with. */
  cheapTier?: string;
  /** Default: the dearest tier with outcomes in the traces. */
  strongTier?: string;
  /** Score every problem of the file, not only the bundle's held-out ones. */
  all?: boolean;
  /**
   * Out-of-fold scores (`train --steps --cv-scores`) instead of the bundle's own predictions: every
   * problem in that file is scored by probes that never saw it.
   */
  scoresFile?: string;
  taus?: readonly number[];
  prices?: Record<string, TierPrice>;
  /** A loaded encoder of the bundle's model, for counting tokens (tests share one). */
  encoder?: EncoderHost;
  /** Writes report.json, accuracy-vs-cost.svg and simulation-traces.jsonl here. */
  outDir?: string;
}

export interface EvalStepsReport extends Omit<SimulationReport, 'taus'> {
  probes: string;
  traces_file: string;
  problems: 'held-out' | 'all' | 'cross-validated';
  /** Problems in the simulation (the cheap trajectory complete in the store, the strong outcome known). */
  n_problems: number;
  cheap_tier: string;
  strong_tier: string;
  tokenizer: string;
  prices: Record<string, TierPrice>;
  /** Checks past this many steps are not made (prefixes not extracted); null: every step checked. */
  max_k: number | null;
  incomplete_trajectories: Record<string, number>;
  /** The step store read, and what had to be encoded into it first. */
  store: { dir: string; encoded: number; cached: number; failed: number };
  /** Per tier: AUROC of the prefixes with exactly k steps, and of the same trajectories' k = 0 scores. */
  step_auroc: Record<string, StepAurocRow[]>;
  taus: number[];
}

function stepMetric<T>(bundle: ProbeBundle, key: string): T | undefined {
  return bundle.steps?.metrics?.[key] as T | undefined;
}

export async function evalSteps(options: EvalStepsOptions): Promise<EvalStepsReport> {
  const { manifest, path } = resolveCachedModel(options.model ?? DEFAULT_ENCODER_MODEL);
  const bundle = await loadProbeBundle(options.probes, manifest);
  if (!bundle.steps) {
    throw new TrainingDataError(`${options.probes} is not a step-probe bundle (it has no "steps" field)`);
  }
  const maxK = stepMetric<number | null>(bundle, 'max_k') ?? null;
  const heldOut = stepMetric<{ test_problems?: string[] }>(bundle, 'split')?.test_problems;
  const given = options.scoresFile ? await readScores(options.scoresFile) : undefined;
  if (!options.all && !heldOut && !given) {
    throw new TrainingDataError(
      `${options.probes} names no held-out problems; pass --all to score every problem`,
    );
  }
  const bundleTiers = bundle.tiers.map((t) => t.id);
  const keep = given
    ? new Set([...given.keys()].map((key) => key.split('\u0000')[0]!))
    : options.all
      ? undefined
      : new Set(heldOut);
  const encoder = options.encoder ?? (await EncoderHost.create({ modelPath: path }));
  let data: Awaited<ReturnType<typeof loadStepData>> | undefined;
  try {
    const identity = { name: manifest.name, sha256: manifest.sha256 };
    const needed = Math.max(...bundle.features.layers);
    // train --steps's default store when it holds the bundle's layer, so what training extracted is reused.
    const storeDir =
      options.storeDir ?? defaultStepStore(manifest.sha256, Math.max(needed, DEFAULT_STEP_DEEPEST_LAYER));
    const existing = await inspectStepStore(storeDir, identity);
    const deepest = existing?.deepestLayer ?? needed;
    if (deepest < needed) {
      throw new TrainingDataError(
        `the step store ${storeDir} holds layers 0..${deepest}, but ${options.probes} reads layer ${needed}; ` +
          'pass another --store (or none, for the default one)',
      );
    }
    const extracted = await extractMissingPrefixes(options, {
      bundleTiers,
      keep,
      maxK,
      storeDir,
      deepest,
      encoder,
      stored: existing?.hashes ?? new Set(),
      segmentation: bundle.steps.segmentation,
    });
    data = await loadStepData({
      tracesFile: options.tracesFile,
      storeDir,
      segmentation: bundle.steps.segmentation,
      tiers: bundleTiers,
      ...(options.model ? { model: options.model } : {}),
      ...(maxK === null ? {} : { maxK }),
    });
    const rows = data.rows.filter((r) => !keep || keep.has(r.problem));
    const trajectories = data.trajectories.filter((t) => !keep || keep.has(t.problem));
    if (rows.length === 0)
      throw new TrainingDataError('no held-out problem has its step prefixes in the store');
    const features = stepFeatures(
      data.store,
      rows.map((r) => r.hash),
      bundle.features.layers,
      bundle.features.pooling,
    );
    const probs = given
      ? rows.map((r) => {
          const p = given.get(scoreKey(r.problem, r.tier, r.k));
          if (p === undefined) {
            throw new TrainingDataError(
              `${options.scoresFile} has no score for ${r.problem}, ${r.tier}, k = ${r.k}`,
            );
          }
          return p;
        })
      : predictProbesBatch(bundle, features).map((p, i) => p.tiers[rows[i]!.tier]!);

    const stepAuroc: Record<string, StepAurocRow[]> = {};
    for (const tier of bundleTiers) {
      const at = rows.flatMap((r, i) => (r.tier === tier ? [i] : []));
      if (at.length > 0)
        stepAuroc[tier] = stepAurocByK(
          at.map((i) => rows[i]!),
          at.map((i) => probs[i]!),
        );
    }

    const cheapTier =
      options.cheapTier ??
      (bundle.difficulty.kind === 'tier-failure' ? bundle.difficulty.tier : bundleTiers[0]!);
    const prices: Record<string, TierPrice> = { ...DEFAULT_PRICES };
    for (const t of bundle.tiers) if (t.price) prices[t.id] = t.price;
    Object.assign(prices, options.prices);
    const priceOf = (tier: string) => prices[tier] ?? { input_usd_per_mtok: 0, output_usd_per_mtok: 0 };
    const outcomeTiers = [...new Set(data.traces.flatMap((t) => Object.keys(t.outcomes)))];
    const strongTier =
      options.strongTier ??
      outcomeTiers
        .filter((t) => t !== cheapTier)
        .sort(
          (a, b) =>
            priceOf(b).input_usd_per_mtok +
            priceOf(b).output_usd_per_mtok -
            priceOf(a).input_usd_per_mtok -
            priceOf(a).output_usd_per_mtok,
        )[0];
    if (!strongTier)
      throw new TrainingDataError('no strong tier: the traces have outcomes for one tier only');

    const simulation = simulationTraces(data.traces, trajectories, rows, probs, {
      cheapTier,
      strongTier,
      count: tokenCounter(encoder),
    });
    if (simulation.length === 0) {
      throw new TrainingDataError(
        `no problem has both a complete ${cheapTier} trajectory and a ${strongTier} answer`,
      );
    }
    const sweep = simulateSweep(
      simulation,
      { cheap: priceOf(cheapTier), strong: priceOf(strongTier) },
      options.taus ?? DEFAULT_TAUS,
    );
    const report: EvalStepsReport = {
      probes: options.probes,
      traces_file: options.tracesFile,
      problems: given ? 'cross-validated' : options.all ? 'all' : 'held-out',
      n_problems: simulation.length,
      cheap_tier: cheapTier,
      strong_tier: strongTier,
      tokenizer: `${manifest.name} (the encoder's own tokenizer, without its BOS token)`,
      prices: { [cheapTier]: priceOf(cheapTier), [strongTier]: priceOf(strongTier) },
      max_k: maxK,
      incomplete_trajectories: data.incomplete,
      store: extracted,
      step_auroc: stepAuroc,
      ...sweep,
    };
    if (options.outDir) await writeOutputs(options.outDir, report, simulation);
    return report;
  } finally {
    if (!options.encoder) await encoder.dispose();
    await data?.store.close();
  }
}

/**
 * Encodes the step prefixes of the problems to be scored that the store lacks (every tier of the
 * bundle, up to its max_k), so a trace file never extracted can be scored, as `eval` encodes prompts
 * it finds no activations for. Stored, since step prefixes cost ~10× a prompt to encode. The store is
 * opened for writing only when something is missing, so a complete store may be read-only or in use.
 */
async function extractMissingPrefixes(
  options: EvalStepsOptions,
  plan: {
    bundleTiers: string[];
    keep: ReadonlySet<string> | undefined;
    maxK: number | null;
    storeDir: string;
    deepest: number;
    encoder: EncoderHost;
    /** What the store held before. */
    stored: ReadonlySet<string>;
    segmentation: NonNullable<ProbeBundle['steps']>['segmentation'];
  },
): Promise<EvalStepsReport['store']> {
  const { traces } = await readTraces(options.tracesFile);
  const examples = stepExamples(
    traces.filter((t) => !plan.keep || plan.keep.has(t.id)),
    {
      tiers: plan.bundleTiers,
      segmentation: plan.segmentation,
      ...(plan.maxK === null ? {} : { maxK: plan.maxK }),
    },
  );
  const hashes = new Set(examples.map((e) => e.hash));
  const missing = [...hashes].filter((h) => !plan.stored.has(h)).length;
  if (missing === 0) return { dir: plan.storeDir, encoded: 0, cached: hashes.size, failed: 0 };
  const summary = await extractStepActivations({
    chains: [...examplesByTrajectory(examples).values()],
    storeDir: plan.storeDir,
    deepestLayer: plan.deepest,
    encoder: plan.encoder,
    ...(options.model ? { model: options.model } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  return {
    dir: plan.storeDir,
    encoded: summary.encoded,
    cached: summary.cached,
    failed: summary.failed.length,
  };
}

const scoreKey = (problem: string, tier: string, k: number) => `${problem}\u0000${tier}\u0000${k}`;

async function readScores(file: string): Promise<Map<string, number>> {
  const { records } = await readJsonl(file, StepScoreSchema, { throwOnError: true, what: 'step score file' });
  return new Map(records.map((r) => [scoreKey(r.problem, r.tier, r.k), r.p]));
}

/** Tokens of a text under the encoder's tokenizer, not counting the BOS token it adds. */
function tokenCounter(encoder: EncoderHost): (text: string) => number {
  const bos = encoder.tokenize('').length;
  return (text) => (text.length === 0 ? 0 : encoder.tokenize(text.toWellFormed()).length - bos);
}

/** The simulation's input for every problem with a complete cheap trajectory and a strong outcome. */
export function simulationTraces(
  traces: readonly Trace[],
  trajectories: readonly StepTrajectory[],
  rows: readonly StepExample[],
  probs: readonly number[],
  options: { cheapTier: string; strongTier: string; count: (text: string) => number },
): SimulationTrace[] {
  const scores = new Map<string, number[]>();
  rows.forEach((r, i) => {
    if (r.tier !== options.cheapTier) return;
    const list = scores.get(r.problem) ?? [];
    list[r.k] = probs[i]!;
    scores.set(r.problem, list);
  });
  const byId = new Map(traces.map((t) => [t.id, t]));
  const out: SimulationTrace[] = [];
  for (const t of trajectories) {
    if (t.tier !== options.cheapTier) continue;
    const trace = byId.get(t.problem)!;
    const strongOutcome = trace.outcomes[options.strongTier];
    const strongResponse = trace.responses?.[options.strongTier];
    if (strongOutcome === undefined || strongResponse === undefined) continue;
    const tokensAfter = [0];
    for (let k = 1; k <= t.steps.length; k += 1) {
      const prefix = k === t.steps.length ? t.response : stepPrefix(t.response, t.steps, k);
      tokensAfter.push(Math.max(tokensAfter.at(-1)!, options.count(prefix)));
    }
    out.push({
      id: t.problem,
      cheap_scores: scores.get(t.problem) ?? [],
      cheap_tokens_after: tokensAfter,
      cheap_correct: t.label,
      strong_correct: successOf(strongOutcome),
      prompt_tokens: options.count(t.prompt),
      strong_output_tokens: options.count(strongResponse),
    });
  }
  return out;
}

async function writeOutputs(dir: string, report: EvalStepsReport, traces: SimulationTrace[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(join(dir, 'simulation-traces.jsonl'), traces.map((t) => `${JSON.stringify(t)}\n`).join(''));
  await writeFile(join(dir, 'accuracy-vs-cost.svg'), await renderChartSvg(stepRoutingChartSpec(report)));
}

/** Accuracy against cost share: the per-step and request-level τ sweeps and the two single tiers. */
export function stepRoutingChartSpec(
  report: Pick<
    EvalStepsReport,
    'cheap_tier' | 'strong_tier' | 'n_problems' | 'per_step' | 'request_level' | 'cheap_only' | 'strong_only'
  >,
): ChartSpec {
  const curve = (points: SimulationReport['per_step']) =>
    [...points].sort((a, b) => a.cost_share - b.cost_share).map((p) => ({ x: p.cost_share, y: p.accuracy }));
  return lineChartSpec({
    title: `Per-step vs request-level routing, ${report.cheap_tier} → ${report.strong_tier} (${report.n_problems} problems)`,
    subtitle: 'each curve sweeps the threshold τ from 0 to 1; dashed grey: the two single tiers',
    xTitle: `cost share of ${report.strong_tier} alone`,
    yTitle: 'accuracy',
    series: [
      { name: 'per-step routing (τ sweep)', points: curve(report.per_step) },
      { name: 'request-level routing (τ sweep)', points: curve(report.request_level) },
      {
        name: 'single tiers',
        dashed: true,
        points: [
          { x: report.cheap_only.cost_share, y: report.cheap_only.accuracy },
          { x: report.strong_only.cost_share, y: report.strong_only.accuracy },
        ],
      },
    ],
  });
}

/** A short text report for the terminal. */
export function renderEvalSteps(report: EvalStepsReport): string {
  const pct = (v: number | null) => (v === null ? '–' : `${(100 * v).toFixed(1)} %`);
  const lines = [
    `step probes ${report.probes} on ${report.traces_file} (${report.problems} problems: ${report.n_problems})`,
    `cheap ${report.cheap_tier} → strong ${report.strong_tier}; tokens: ${report.tokenizer}`,
    '',
    'step-prefix AUROC by step index k (request-level AUROC of the same trajectories in brackets):',
  ];
  for (const [tier, rows] of Object.entries(report.step_auroc)) {
    lines.push(
      `  ${tier}: ${rows.map((r) => `k=${r.k} ${r.auroc?.toFixed(3) ?? '–'} [${r.request_auroc?.toFixed(3) ?? '–'}] n=${r.n}`).join(', ')}`,
    );
  }
  lines.push('', 'τ      per-step: acc  cost  esc  step | request-level: acc  cost  esc');
  report.taus.forEach((tau, i) => {
    const s = report.per_step[i]!;
    const r = report.request_level[i]!;
    if (i % 5 !== 0 && i !== report.taus.length - 1) return;
    lines.push(
      `${tau.toFixed(2)}  ${pct(s.accuracy)} ${pct(s.cost_share)} ${pct(s.escalation_rate)} ${s.mean_escalation_step?.toFixed(2) ?? '–'} | ${pct(r.accuracy)} ${pct(r.cost_share)} ${pct(r.escalation_rate)}`,
    );
  });
  lines.push(
    `cheap only: ${pct(report.cheap_only.accuracy)} at ${pct(report.cheap_only.cost_share)}; strong only: ${pct(report.strong_only.accuracy)}`,
    `per-step reaches the strong tier's accuracy at cost share ${pct(report.per_step_reaching_strong?.cost_share ?? null)}; request-level at ${pct(report.request_level_reaching_strong?.cost_share ?? null)}`,
    `best accuracy at cost share ≤ c: ${report.equal_cost.map((e) => `${e.cost_share}: ${pct(e.per_step)} vs ${pct(e.request_level)}`).join('; ')}`,
  );
  return `${lines.join('\n')}\n`;
}
