import { join } from 'node:path';
import { EncoderHost } from '../src/encoder/encoder-host.js';
import { TrainingDataError } from '../src/errors.js';
import { DEFAULT_ENCODER_MODEL } from '../src/models/manifest.js';
import { resolveCachedModel } from '../src/models/manifest-registry.js';
import { packageRoot } from '../src/paths.js';
import { loadProbeBundle } from '../src/probes/probe-bundle.js';
import { kFold } from '../src/probes/splits.js';
import { stepProbeText } from '../src/probes/step-probe-info.js';
import { createRng } from '../src/seeded-rng.js';
import {
  compareGates,
  type Gate,
  type GateComparison,
  pointWithin,
} from '../src/steps/cascade-simulation.js';
import { asStepBundle, scoreStepPrefix } from '../src/steps/step-scorer.js';
import {
  type PolicyPoint,
  type SimulationTrace,
  SimulationTraceSchema,
  simulateSweep,
} from '../src/steps/step-simulation.js';
import { fitTfidf, tfidfVector } from '../src/text/tfidf.js';
import { readJsonl, readTraces } from '../src/traces/jsonl-reader.js';
import { promptText, successOf, type Trace } from '../src/traces/trace-schema.js';
import { fitLinearHead, stackRows } from '../training/fit-baselines.js';
import { DEFAULT_PRICES } from '../training/tier-costs.js';
import { fillAnswerLogprobs } from './answer-logprob.js';
import { writeCascadeGateOutputs } from './cascade-gate-report.js';

/**
 * `npm run bench -- cascade-gate`: issue 15's quality gate measured on the shared GSM8K traces. Mixtral
 * answers; a gate reads its whole answer and escalates to GPT-4 (which answers from scratch) below τ —
 * against request-level routing, which reads the prompt alone, and text baselines. Every reading is of a
 * problem no model behind it was fitted on (out of fold, or the step bundle's held-out problems).
 */
const CHEAP = 'mixtral-8x7b-instruct';
const STRONG = 'gpt-4-1106-preview';
const BUDGETS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
const REFERENCE = 'cascade: probe gate';
const DOCS = join(packageRoot, 'docs');

export interface CascadeGateOptions {
  traces: string;
  /** Problems (a seeded random subset) whose answers get the logprob proxy; default all. */
  logprobProblems?: number;
  resamples: number;
  log: (line: string) => void;
}

export interface EvaluationSet {
  name: string;
  what: string;
  comparison: GateComparison;
  /** Per-step routing (issue 6) on the same problems: point estimates at each budget, for reference. */
  per_step: { sweep: PolicyPoint[]; at_budget: { budget: number; point: PolicyPoint | null }[] };
  oracle_accuracy: number;
}

export interface CascadeGateResult {
  /** The held-out problems read live (encoder + bundle, as the server does) against the step store's readings. */
  live_vs_offline: { n: number; answer: Difference; prompt: Difference };
  /** Cost shares of GPT-4 alone the gates are compared at. */
  budgets: number[];
  prices: typeof DEFAULT_PRICES;
  tokenizer: string;
  logprob_proxy: string;
  sets: EvaluationSet[];
}

interface Difference {
  mean_abs: number;
  max_abs: number;
}

function differences(a: readonly number[], b: readonly number[]): Difference {
  const abs = a.map((v, i) => Math.abs(v - b[i]!));
  return { mean_abs: abs.reduce((s, v) => s + v, 0) / abs.length, max_abs: Math.max(...abs) };
}

/**
 * The shipped step bundle's readings of prompt alone and prompt + Mixtral's whole answer, through the
 * encoder as the server's gate computes them (scoreStepPrefix), not through the step store.
 */
async function liveReadings(
  set: readonly SimulationTrace[],
  byId: Map<string, Trace>,
  log: (line: string) => void,
): Promise<{ prompt: number[]; answer: number[] }> {
  const { manifest, path } = resolveCachedModel(DEFAULT_ENCODER_MODEL);
  const file = join(packageRoot, 'probes', 'default-steps.json');
  const bundle = asStepBundle(await loadProbeBundle(file, manifest), CHEAP, file);
  log(`cascade-gate: reading ${set.length} held-out problems live (prompt, and prompt + answer)`);
  const encoder = await EncoderHost.create({ modelPath: path });
  try {
    const prompt: number[] = [];
    const answer: number[] = [];
    for (const t of set) {
      const trace = byId.get(t.id)!;
      prompt.push(await scoreStepPrefix(encoder, bundle, promptText(trace), ''));
      answer.push(await scoreStepPrefix(encoder, bundle, promptText(trace), trace.responses![CHEAP]!));
    }
    return { prompt, answer };
  } finally {
    await encoder.dispose();
  }
}

async function simulationTraces(file: string, byId: Map<string, Trace>): Promise<SimulationTrace[]> {
  const { records } = await readJsonl(file, SimulationTraceSchema, {
    throwOnError: true,
    what: 'simulation traces',
  });
  for (const t of records) {
    const trace = byId.get(t.id);
    if (!trace || successOf(trace.outcomes[CHEAP]!) !== t.cheap_correct) {
      throw new TrainingDataError(`${file}: ${t.id} does not match the trace file`);
    }
    // The answer gate reads the score after the last step: the prompt plus the whole answer.
    if (t.cheap_scores.length !== t.cheap_tokens_after.length) {
      throw new TrainingDataError(`${file}: ${t.id} has no score of its whole answer`);
    }
  }
  return records;
}

/**
 * Out-of-fold P(Mixtral is right) from a TF-IDF + logistic regression text classifier (the probes' own
 * fitting procedure, fit-baselines.ts): 5 folds by problem, vocabulary and weights from the training
 * folds only.
 */
function textScores(texts: readonly string[], labels: readonly boolean[], seed: number): number[] {
  const out = new Array<number>(texts.length).fill(Number.NaN);
  for (const [f, fold] of kFold(texts.length, 5, createRng(seed), labels).entries()) {
    const tfidf = fitTfidf(fold.train.map((i) => texts[i]!));
    const x = stackRows(
      texts.map((t) => tfidfVector(tfidf, t)),
      tfidf.terms.length,
    );
    const head = fitLinearHead(x, [labels], [CHEAP], fold.train, {
      rng: createRng(seed + 1 + f),
      lambdas: [100, 10, 1, 0.1],
    });
    const probs = head.predict(fold.test)[0]!;
    fold.test.forEach((i, k) => {
      out[i] = probs[k]!;
    });
  }
  return out;
}

function evaluate(
  name: string,
  what: string,
  traces: readonly SimulationTrace[],
  readings: Map<string, Map<string, number>>,
  stages: Record<string, Gate['stage']>,
  resamples: number,
): EvaluationSet {
  // A gate joins a set only where it has a reading of every problem in it.
  const gates: Gate[] = [...readings.entries()]
    .filter(([, byId]) => traces.every((t) => byId.has(t.id)))
    .map(([gate, byId]) => ({
      name: gate,
      stage: stages[gate]!,
      readings: traces.map((t) => byId.get(t.id)!),
    }));
  const prices = { cheap: DEFAULT_PRICES[CHEAP]!, strong: DEFAULT_PRICES[STRONG]! };
  const comparison = compareGates(traces, gates, prices, {
    budgets: BUDGETS,
    reference: REFERENCE,
    resamples,
    seed: 15,
    confidence: 0.95,
  });
  const perStep = simulateSweep(traces, prices).per_step;
  return {
    name,
    what,
    comparison,
    per_step: {
      sweep: perStep,
      at_budget: BUDGETS.map((budget) => ({ budget, point: pointWithin(perStep, budget) })),
    },
    oracle_accuracy: traces.filter((t) => t.cheap_correct || t.strong_correct).length / traces.length,
  };
}

export async function runCascadeGateBench(options: CascadeGateOptions): Promise<CascadeGateResult> {
  const { log } = options;
  const { traces } = await readTraces(options.traces, { throwOnError: true });
  const byId = new Map(traces.map((t) => [t.id, t]));
  const outOfFold = await simulationTraces(
    join(DOCS, 'eval-steps/cross-validated/simulation-traces.jsonl'),
    byId,
  );
  const heldOut = await simulationTraces(join(DOCS, 'eval-steps/held-out/simulation-traces.jsonl'), byId);

  log(`cascade-gate: text baselines, 5-fold by problem over ${outOfFold.length} problems`);
  const labels = outOfFold.map((t) => t.cheap_correct);
  const prompts = outOfFold.map((t) => promptText(byId.get(t.id)!));
  const answers = outOfFold.map((t, i) => stepProbeText(prompts[i]!, byId.get(t.id)!.responses![CHEAP]!));
  const textPrompt = textScores(prompts, labels, 151);
  const textAnswer = textScores(answers, labels, 152);

  const { path } = resolveCachedModel(DEFAULT_ENCODER_MODEL);
  const logprobs = await fillAnswerLogprobs({
    traces: outOfFold.map((t) => byId.get(t.id)!),
    tier: CHEAP,
    cacheFile: join(DOCS, 'cascade-gate/answer-logprobs.jsonl'),
    modelPath: path,
    modelName: DEFAULT_ENCODER_MODEL,
    ...(options.logprobProblems === undefined ? {} : { problems: options.logprobProblems }),
    log,
  });

  const random = createRng(153);
  const column = (values: readonly number[]) => new Map(outOfFold.map((t, i) => [t.id, values[i]!]));
  const stages: Record<string, Gate['stage']> = {};
  const readings = new Map<string, Map<string, number>>();
  const add = (name: string, stage: Gate['stage'], byProblem: Map<string, number>) => {
    stages[name] = stage;
    readings.set(name, byProblem);
  };
  // The step probe's scores: index 0 reads the prompt alone, the last the prompt and the whole answer.
  const probeScores = (set: readonly SimulationTrace[], at: (t: SimulationTrace) => number) =>
    new Map(set.map((t) => [t.id, at(t)]));
  add(
    REFERENCE,
    'answer',
    probeScores(outOfFold, (t) => t.cheap_scores.at(-1)!),
  );
  add(
    'request-level: prompt probe',
    'prompt',
    probeScores(outOfFold, (t) => t.cheap_scores[0]!),
  );
  add(
    'cascade: logprob gate (Gemma 270M proxy)',
    'answer',
    new Map(logprobs.map((r) => [r.id, r.mean_logprob])),
  );
  add('cascade: TF-IDF gate (text baseline)', 'answer', column(textAnswer));
  add('request-level: TF-IDF (text baseline)', 'prompt', column(textPrompt));
  add('request-level: random', 'prompt', column(outOfFold.map(() => random.next())));

  const scored = new Set(logprobs.map((r) => r.id));
  const withoutLogprob = new Map([...readings].filter(([name]) => !name.includes('logprob')));
  const sets = [
    evaluate(
      'out-of-fold',
      `all ${outOfFold.length} problems, step-probe scores out of fold (5 folds by problem)`,
      outOfFold,
      scored.size === outOfFold.length ? readings : withoutLogprob,
      stages,
      options.resamples,
    ),
  ];
  if (scored.size < outOfFold.length) {
    sets.push(
      evaluate(
        'logprob-subset',
        `the ${scored.size} problems (seeded random subset) whose answers have the logprob proxy, scores out of fold`,
        outOfFold.filter((t) => scored.has(t.id)),
        readings,
        stages,
        options.resamples,
      ),
    );
  }
  // The shipped bundle on the problems it never saw (no layer-selection leak), read live as the server's
  // gate reads them; text scores stay out of fold.
  const live = await liveReadings(heldOut, byId, log);
  const heldOutReadings = new Map(readings);
  heldOutReadings.set(REFERENCE, new Map(heldOut.map((t, i) => [t.id, live.answer[i]!])));
  heldOutReadings.set('request-level: prompt probe', new Map(heldOut.map((t, i) => [t.id, live.prompt[i]!])));
  if (!heldOut.every((t) => scored.has(t.id)))
    heldOutReadings.delete('cascade: logprob gate (Gemma 270M proxy)');
  sets.push(
    evaluate(
      'held-out',
      `the step bundle's ${heldOut.length} held-out problems, read live by the shipped probes/default-steps.json (as the server's gate reads them)`,
      heldOut,
      heldOutReadings,
      stages,
      options.resamples,
    ),
  );
  const result: CascadeGateResult = {
    live_vs_offline: {
      n: heldOut.length,
      answer: differences(
        live.answer,
        heldOut.map((t) => t.cheap_scores.at(-1)!),
      ),
      prompt: differences(
        live.prompt,
        heldOut.map((t) => t.cheap_scores[0]!),
      ),
    },
    budgets: BUDGETS,
    prices: { [CHEAP]: DEFAULT_PRICES[CHEAP]!, [STRONG]: DEFAULT_PRICES[STRONG]! },
    tokenizer: `${DEFAULT_ENCODER_MODEL} (the encoder's; the traces carry no token counts)`,
    logprob_proxy: `mean ln P(token) of Mixtral's answer text under ${DEFAULT_ENCODER_MODEL} (base model, teacher-forced after the prompt and a blank line) — not Mixtral's own logprobs, which the traces lack`,
    sets,
  };
  await writeCascadeGateOutputs(result, join(DOCS, 'cascade-gate'));
  return result;
}
