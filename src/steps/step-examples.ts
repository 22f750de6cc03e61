import { promptHash } from '../activations/store-format.js';
import type { StepSegmentationInput } from '../probes/step-probe-info.js';
import { stepProbeText } from '../probes/step-probe-info.js';
import { promptText, successOf, type Trace } from '../traces/trace-schema.js';
import { type ResponseStep, segmentSteps, stepPrefix } from './segment-steps.js';

/**
 * Step-prefix examples: for each trace and each tier with both a response and an outcome, the prompt
 * plus the first k steps of that response (k = 0 … K, K = the response's step count) is one example,
 * labelled with whether that trajectory ended correct. k = 0 is the prompt alone, so every tier's first
 * example is the same text (and the same activations) as request-level routing reads.
 */
export interface StepExample {
  /** The trace id: examples of one problem must never straddle a train/test split. */
  problem: string;
  tier: string;
  /** Steps of the response in the text (0 = prompt alone). */
  k: number;
  /** Steps of the whole response. */
  steps: number;
  /** Encoder input (stepProbeText) and its hash, the activation store key. */
  text: string;
  hash: string;
  /** The trajectory ended correct. */
  label: boolean;
}

export interface StepExampleOptions {
  segmentation?: StepSegmentationInput;
  /** Only these tiers (default every tier with a response and an outcome). */
  tiers?: readonly string[];
  /** Prefixes with more than this many steps are left out (training cost); the last kept is k = maxK. */
  maxK?: number;
}

/** One response cut into steps, with the label of its trajectory. */
export interface StepTrajectory {
  problem: string;
  tier: string;
  prompt: string;
  response: string;
  steps: ResponseStep[];
  label: boolean;
}

/** Every (trace, tier) trajectory that has a response and an outcome, in file order then tier order. */
export function stepTrajectories(
  traces: readonly Trace[],
  options: Pick<StepExampleOptions, 'segmentation' | 'tiers'> = {},
): StepTrajectory[] {
  const out: StepTrajectory[] = [];
  for (const trace of traces) {
    const prompt = promptText(trace);
    for (const [tier, response] of Object.entries(trace.responses ?? {})) {
      if (options.tiers && !options.tiers.includes(tier)) continue;
      const outcome = trace.outcomes[tier];
      if (outcome === undefined) continue;
      const label = successOf(outcome);
      const steps = segmentSteps(response, options.segmentation ?? {});
      out.push({ problem: trace.id, tier, prompt, response, steps, label });
    }
  }
  return out;
}

/** The text a step probe reads after k steps of a trajectory. */
export function trajectoryPrefixText(trajectory: StepTrajectory, k: number): string {
  return stepProbeText(trajectory.prompt, stepPrefix(trajectory.response, trajectory.steps, k));
}

export function stepExamples(traces: readonly Trace[], options: StepExampleOptions = {}): StepExample[] {
  const out: StepExample[] = [];
  const hashes = new Map<string, string>();
  for (const t of stepTrajectories(traces, options)) {
    const last = Math.min(t.steps.length, options.maxK ?? Number.POSITIVE_INFINITY);
    for (let k = 0; k <= last; k += 1) {
      const text = trajectoryPrefixText(t, k);
      let hash = hashes.get(text);
      if (hash === undefined) {
        hash = promptHash(text);
        hashes.set(text, hash);
      }
      out.push({ problem: t.problem, tier: t.tier, k, steps: t.steps.length, text, hash, label: t.label });
    }
  }
  return out;
}

/** Key of one (problem, tier) trajectory. */
export function trajectoryKey(t: { problem: string; tier: string }): string {
  return `${t.problem}\u0000${t.tier}`;
}

/** Examples cut back into their trajectories (k ascending within each), in first-seen order. */
export function examplesByTrajectory(examples: readonly StepExample[]): Map<string, StepExample[]> {
  const out = new Map<string, StepExample[]>();
  for (const e of examples) {
    const key = trajectoryKey(e);
    const list = out.get(key);
    if (list) list.push(e);
    else out.set(key, [e]);
  }
  return out;
}
