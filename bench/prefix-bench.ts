import { encodePrefixChain, encodeStep } from '../src/activations/encode-steps.js';
import { relativeError } from '../src/encoder/vector-math.js';
import { stepTrajectories, trajectoryPrefixText } from '../src/steps/step-examples.js';
import { readTraces } from '../src/traces/jsonl-reader.js';
import { sharedEncoder } from '../test/support/default-encoder.js';
import { stepStoreShape } from '../training/extract-step-activations.js';

export interface PrefixBenchOptions {
  traces: string;
  /** Trajectories (one tier's chain of thought on one problem), the file's first ones. */
  trajectories: number;
  /** Deepest layer stored, as `train --steps --deepest-layer`. */
  deepestLayer: number;
}

export interface PrefixBenchResult {
  trajectories: number;
  prefixes: number;
  prefix_tokens_mean: number;
  /** Prefixes read out of their chain's shared decode (the rest are under 64 tokens and decode alone). */
  shared_share: number;
  texts_per_s: { each_prefix_alone: number; one_decode_per_chain: number };
  speedup: number;
  /** Largest relative error between the two ways, over every prefix, layer and pooling (0: bit-identical). */
  max_relative_error: number;
}

/**
 * What reading every step prefix of a chain of thought out of one decode saves in `train --steps`'
 * extraction: the same real GSM8K chains encoded (a) prefix by prefix, each its own decode, and (b) one
 * decode per chain (`encodePrefixChain`), interleaved chain by chain so both see the same load, with
 * the store's layers (0 … deepest, both poolings) and early exit.
 */
export async function runPrefixBench(
  options: PrefixBenchOptions,
  log: (line: string) => void,
): Promise<PrefixBenchResult> {
  const { traces } = await readTraces(options.traces);
  const chains = stepTrajectories(traces)
    .slice(0, options.trajectories)
    .map((t) => Array.from({ length: t.steps.length + 1 }, (_, k) => trajectoryPrefixText(t, k)));
  const encoder = await sharedEncoder();
  const shape = stepStoreShape(options.deepestLayer, encoder.info.layers);
  let aloneMs = 0;
  let chainMs = 0;
  let prefixes = 0;
  let tokens = 0;
  let shared = 0;
  let maxError = 0;
  log(`prefix bench: ${chains.length} GSM8K chains, layers 0..${options.deepestLayer}`);
  for (const texts of chains) {
    let started = performance.now();
    // The default host decodes one prompt at a time: each prefix is its own decode.
    const alone = await encodeStep(encoder, texts, shape);
    aloneMs += performance.now() - started;
    started = performance.now();
    const together = await encodePrefixChain(encoder, texts, shape);
    chainMs += performance.now() - started;
    for (const [i, a] of alone.entries()) {
      const b = together[i]!;
      if (!a.ok || !b.ok) throw new Error(`prefix ${i} failed to encode`);
      prefixes += 1;
      tokens += a.record.tokens;
      if (b.shared) shared += 1;
      const vectors = [...a.record.last, ...a.record.mean];
      const others = [...b.record.last, ...b.record.mean];
      for (const [j, v] of vectors.entries()) maxError = Math.max(maxError, relativeError(others[j]!, v));
    }
  }
  const perSecond = (ms: number) => Math.round((prefixes / (ms / 1000)) * 100) / 100;
  return {
    trajectories: chains.length,
    prefixes,
    prefix_tokens_mean: Math.round(tokens / prefixes),
    shared_share: Math.round((shared / prefixes) * 1000) / 1000,
    texts_per_s: { each_prefix_alone: perSecond(aloneMs), one_decode_per_chain: perSecond(chainMs) },
    speedup: Math.round((aloneMs / chainMs) * 100) / 100,
    max_relative_error: maxError,
  };
}

export function prefixMarkdown(r: PrefixBenchResult, options: PrefixBenchOptions): string {
  return [
    `Step-prefix extraction (\`train --steps --extract\`): the first ${r.trajectories} trajectories of the GSM8K traces ` +
      `(${r.prefixes} prefixes, ${r.prefix_tokens_mean} tokens on average), layers 0–${options.deepestLayer} with both ` +
      'poolings and early exit, the two ways interleaved chain by chain:',
    '',
    '| way | prefixes/s |',
    '|---|---|',
    `| every prefix its own decode | ${r.texts_per_s.each_prefix_alone} |`,
    `| one decode per chain (\`encodePrefixes\`; prefixes under 64 tokens alone) | ${r.texts_per_s.one_decode_per_chain} |`,
    '',
    `- speedup: **${r.speedup}×**; ${(r.shared_share * 100).toFixed(0)} % of the prefixes came out of a shared decode`,
    `- largest relative difference between the two, over every prefix, layer and pooling: **${r.max_relative_error}**`,
  ].join('\n');
}
