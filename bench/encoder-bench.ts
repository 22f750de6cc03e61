import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Token } from 'node-llama-cpp';
import { EncoderHost } from '../src/encoder/encoder-host.js';
import { loadActivationBinding } from '../src/encoder/native-binding.js';
import { type LatencySummary, summarize } from '../src/metrics/quantile.js';

export interface EncoderBenchOptions {
  modelPath: string;
  runs: number;
  promptTokens: number;
  throughputPrompts: number;
}

export interface EncoderBenchResult {
  prompt_tokens: number;
  runs: number;
  threads: number;
  variant: string;
  latency_ms: {
    node_llama_cpp_full_prefill: LatencySummary;
    addon_all_layers: LatencySummary;
    addon_middle_layer_early_exit: LatencySummary;
    addon_all_layers_repacked: LatencySummary;
    addon_middle_layer_early_exit_repacked: LatencySummary;
  };
  tokens_per_s: { node_llama_cpp_full_prefill: number; addon_all_layers: number; addon_middle_layer: number };
  ratio_middle_layer_vs_full_prefill: number;
  ratio_middle_layer_repacked_vs_full_prefill: number;
  throughput_prompts_per_s: { concurrency_1: number; concurrency_16: number; concurrency_16_batched: number };
  throughput_ratio_16_vs_1: number;
  peak_rss_mb_encoder_only: number;
}

const SENTENCES = [
  'The committee reviewed the quarterly figures before approving the revised budget.',
  'Photosynthesis converts light energy into chemical energy stored in glucose.',
  'A train leaves the station at noon travelling at sixty miles per hour.',
  'Which of the following best describes the role of the Federal Reserve?',
  'The defendant argued that the contract was void because of a mutual mistake.',
  'Enzymes lower the activation energy required for biochemical reactions.',
];

/**
 * A prompt of exactly `tokens` tokens; `seed` numbers it and picks the sentence order, so prompts of
 * different seeds differ (identical prompts in flight would share a decode and inflate throughput).
 */
export function makePrompt(encoder: EncoderHost, tokens: number, seed: number): string {
  let text = `Item ${seed}. `;
  let i = seed;
  while (encoder.tokenize(text).length < tokens) {
    text += `${SENTENCES[i % SENTENCES.length]} `;
    i += 1;
  }
  // Trim word by word to land on the exact count (BOS included).
  const words = text.trim().split(' ');
  while (encoder.tokenize(words.join(' ')).length > tokens) words.pop();
  return words.join(' ');
}

async function measureThroughput(
  encoder: EncoderHost,
  prompts: string[],
  concurrency: number,
  layer: number,
) {
  const start = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < prompts.length) {
      const prompt = prompts[next++]!;
      await encoder.encode([prompt], { layers: [layer], pooling: 'both' });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return prompts.length / ((performance.now() - start) / 1000);
}

/** Peak RSS of a process that holds only the encoder (as the router does), measured in a child. */
function measurePeakRss(modelPath: string, prompt: string): number {
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--rss-child'], {
    input: JSON.stringify({ modelPath, prompt }),
    encoding: 'utf8',
  });
  if (child.status !== 0) throw new Error(`RSS child failed: ${child.stderr}`);
  return Number(child.stdout.trim());
}

async function rssChild(): Promise<void> {
  let raw = '';
  for await (const chunk of process.stdin) raw += chunk;
  const { modelPath, prompt } = JSON.parse(raw) as { modelPath: string; prompt: string };
  const encoder = await EncoderHost.create({ modelPath });
  await Promise.all(Array.from({ length: 16 }, (_, i) => encodeAllLayers(encoder, `${i} ${prompt}`)));
  await encoder.dispose();
  // maxRSS is in kilobytes.
  process.stdout.write(`${process.resourceUsage().maxRSS / 1024}\n`);
}

/** Every layer's last token and every mean-poolable layer's mean, in one decode. */
function encodeAllLayers(encoder: EncoderHost, prompt: string) {
  return encoder.encodeBothPoolings(
    prompt,
    Array.from({ length: encoder.info.layers + 1 }, (_, i) => i),
  );
}

export async function runEncoderBench(
  options: EncoderBenchOptions,
  log: (line: string) => void,
): Promise<EncoderBenchResult> {
  const { llama } = await loadActivationBinding();
  const encoder = await EncoderHost.create({ modelPath: options.modelPath });
  const repacked = await EncoderHost.create({ modelPath: options.modelPath, repackWeights: true });
  const model = await llama.loadModel({ modelPath: options.modelPath });
  // Same thread count as the encoder: node-llama-cpp's default (maxThreads) oversubscribes small machines.
  const context = await model.createContext({
    contextSize: 512,
    batchSize: 512,
    threads: availableParallelism(),
  });
  const sequence = context.getSequence();
  try {
    const prompt = makePrompt(encoder, options.promptTokens, 0);
    const tokens = Array.from(encoder.tokenize(prompt)) as Token[];
    const middle = Math.floor(encoder.info.layers / 2);
    const samples: Record<keyof EncoderBenchResult['latency_ms'], number[]> = {
      node_llama_cpp_full_prefill: [],
      addon_all_layers: [],
      addon_middle_layer_early_exit: [],
      addon_all_layers_repacked: [],
      addon_middle_layer_early_exit_repacked: [],
    };
    const timed = async (key: keyof typeof samples, fn: () => Promise<unknown>) => {
      const t0 = performance.now();
      await fn();
      samples[key].push(performance.now() - t0);
    };
    // Interleaved, so machine noise hits every method alike; the first round warms caches and is dropped.
    for (let run = 0; run <= options.runs; run++) {
      await timed('node_llama_cpp_full_prefill', async () => {
        await sequence.clearHistory();
        await sequence.evaluateWithoutGeneratingNewTokens(tokens);
      });
      await timed('addon_all_layers', () => encodeAllLayers(encoder, prompt));
      await timed('addon_middle_layer_early_exit', () => encoder.encode([prompt], { layers: [middle] }));
      await timed('addon_all_layers_repacked', () => encodeAllLayers(repacked, prompt));
      await timed('addon_middle_layer_early_exit_repacked', () =>
        repacked.encode([prompt], { layers: [middle] }),
      );
      if (run === 0) for (const list of Object.values(samples)) list.length = 0;
      if (run % 10 === 0 && run > 0) log(`encoder bench: ${run}/${options.runs} runs`);
    }
    const latency = Object.fromEntries(
      Object.entries(samples).map(([k, v]) => [k, summarize(v)]),
    ) as EncoderBenchResult['latency_ms'];

    const prompts = Array.from({ length: options.throughputPrompts }, (_, i) =>
      makePrompt(encoder, options.promptTokens, i + 1),
    );
    log('encoder bench: throughput at concurrency 1 and 16');
    const c1 = await measureThroughput(encoder, prompts, 1, middle);
    const c16 = await measureThroughput(encoder, prompts, 16, middle);
    // Batching distinct prompts (off by default: it changes their activations slightly).
    const batching = await EncoderHost.create({ modelPath: options.modelPath, maxBatchPrompts: 16 });
    const c16Batched = await measureThroughput(batching, prompts, 16, middle);
    await batching.dispose();
    log('encoder bench: peak RSS of an encoder-only process');
    const rss = measurePeakRss(options.modelPath, prompt);
    const perSecond = (ms: number) => (options.promptTokens * 1000) / ms;
    return {
      prompt_tokens: tokens.length,
      runs: options.runs,
      threads: availableParallelism(),
      variant: encoder.info.variant,
      latency_ms: latency,
      tokens_per_s: {
        node_llama_cpp_full_prefill: perSecond(latency.node_llama_cpp_full_prefill.p50),
        addon_all_layers: perSecond(latency.addon_all_layers.p50),
        addon_middle_layer: perSecond(latency.addon_middle_layer_early_exit.p50),
      },
      ratio_middle_layer_vs_full_prefill:
        latency.addon_middle_layer_early_exit.p50 / latency.node_llama_cpp_full_prefill.p50,
      ratio_middle_layer_repacked_vs_full_prefill:
        latency.addon_middle_layer_early_exit_repacked.p50 / latency.node_llama_cpp_full_prefill.p50,
      throughput_prompts_per_s: {
        concurrency_1: c1,
        concurrency_16: c16,
        concurrency_16_batched: c16Batched,
      },
      throughput_ratio_16_vs_1: c16 / c1,
      peak_rss_mb_encoder_only: rss,
    };
  } finally {
    await context.dispose();
    await model.dispose();
    await encoder.dispose();
    await repacked.dispose();
  }
}

if (process.argv.includes('--rss-child')) await rssChild();
