import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { mechrouteHome, packageRoot } from '../src/paths.js';
import { TierFitSchema } from '../src/probes/tier-head-schema.js';
import { defaultEncoderPath } from '../test/support/default-encoder.js';
import { SHARED_DATA, SHARED_GSM8K } from '../test/support/mmlu-slice.js';
import { benchTiers } from '../training/bench-tiers.js';
import { runCascadeGateBench } from './cascade-gate-bench.js';
import { cascadeGateMarkdown } from './cascade-gate-report.js';
import { type EncoderBenchResult, runEncoderBench } from './encoder-bench.js';
import { writeMarkdownSection } from './markdown-section.js';
import { prefixMarkdown, runPrefixBench } from './prefix-bench.js';
import { ALL_PARTS, type ReliabilityPart, runReliability, sizeDefaults } from './reliability.js';
import { omitSamples, writeReliabilityResults } from './reliability-report.js';
import { runServerBench, type ServerBenchResult } from './server-bench.js';
import { runStateBench, stateMarkdown } from './state-bench.js';
import { runStepsBench, stepsMarkdown } from './steps-bench.js';
import { tiersMarkdown } from './tiers-bench.js';

/**
 * `npm run bench -- <suite> [--runs N]`: runs a benchmark suite, writes its JSON to bench-results/ and
 * replaces that suite's section of BENCHMARKS.md with the numbers of this run.
 */
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    runs: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '10' },
    'no-markdown': { type: 'boolean', default: false },
    traces: { type: 'string', default: SHARED_GSM8K },
    'max-tokens': { type: 'string', default: '64' },
    resamples: { type: 'string', default: '2000' },
    'logprob-problems': { type: 'string' },
    size: { type: 'string', default: 'full' },
    parts: { type: 'string' },
    fuzz: { type: 'string' },
    minutes: { type: 'string' },
    clients: { type: 'string' },
    seed: { type: 'string', default: '1' },
    upstream: { type: 'string', default: 'scripted' },
    chat: { type: 'string', default: 'mixed' },
    label: { type: 'string' },
    'server-node-options': { type: 'string' },
    set: { type: 'string', default: 'rb' },
    layers: { type: 'string', default: '10' },
    pooling: { type: 'string', default: 'mean' },
    repeats: { type: 'string', default: '3' },
    inner: { type: 'boolean', default: false },
    methods: { type: 'string' },
  },
});
const suite = positionals[0] ?? 'encoder';
/** The --traces part of a recorded command: only when it is not the default (an absolute path here). */
const tracesFlag = values.traces === SHARED_GSM8K ? '' : ` --traces ${values.traces}`;
const log = (line: string) => process.stderr.write(`${line}\n`);

function writeResults(name: string, result: unknown, markdown: string, command: string): void {
  const outDir = join(packageRoot, 'bench-results');
  mkdirSync(outDir, { recursive: true });
  const jsonPath = join(outDir, `${name}.json`);
  writeFileSync(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${jsonPath}`);
  if (values['no-markdown']) return;
  const mdPath = join(packageRoot, 'BENCHMARKS.md');
  writeMarkdownSection(
    mdPath,
    `bench:${name}`,
    `${markdown}\nCommand: \`${command}\` (${new Date().toISOString().slice(0, 10)})`,
    '# Benchmarks',
  );
  log(`updated ${mdPath}`);
}

function encoderMarkdown(r: EncoderBenchResult): string {
  const row = (name: string, s: { p50: number; p95: number }) => `| ${name} | ${s.p50} | ${s.p95} |`;
  const l = r.latency_ms;
  return [
    `Encoder: ${r.prompt_tokens}-token prompt, ${r.runs} interleaved runs per method, ${r.threads} threads, variant \`${r.variant}\`.`,
    '',
    '| method | p50 ms | p95 ms |',
    '|---|---|---|',
    row('node-llama-cpp full prefill (`evaluateWithoutGeneratingNewTokens`)', l.node_llama_cpp_full_prefill),
    row(
      'addon, all 18 blocks + final norm (last token) and blocks 0-16 (mean), one decode (no repack, default)',
      l.addon_all_layers,
    ),
    row('addon, middle block (9), early exit (no repack, default)', l.addon_middle_layer_early_exit),
    row('addon, all layers, repacked kernels', l.addon_all_layers_repacked),
    row('addon, middle block, early exit, repacked kernels', l.addon_middle_layer_early_exit_repacked),
    '',
    `- middle-layer decision / node-llama-cpp full prefill (p50): **${r.ratio_middle_layer_vs_full_prefill.toFixed(2)}** (no repack, default), ${r.ratio_middle_layer_repacked_vs_full_prefill.toFixed(2)} (repacked); goal ≤ 0.6`,
    `- tokens/s (p50): node-llama-cpp ${r.tokens_per_s.node_llama_cpp_full_prefill.toFixed(0)}, addon all layers ${r.tokens_per_s.addon_all_layers.toFixed(0)}, addon middle layer ${r.tokens_per_s.addon_middle_layer.toFixed(0)}`,
    `- throughput, middle layer: ${r.throughput_prompts_per_s.concurrency_1.toFixed(2)} prompts/s at 1 caller, ${r.throughput_prompts_per_s.concurrency_16.toFixed(2)} at 16 callers (one prompt per decode, the default): **${r.throughput_ratio_16_vs_1.toFixed(2)}×**; ${r.throughput_prompts_per_s.concurrency_16_batched.toFixed(2)} at 16 callers with up to 16 prompts per decode (${(r.throughput_prompts_per_s.concurrency_16_batched / r.throughput_prompts_per_s.concurrency_1).toFixed(2)}×) (goal ≥ 3×)`,
    `- peak RSS of an encoder-only process (16 concurrent all-layer encodes): **${r.peak_rss_mb_encoder_only.toFixed(0)} MB** (goal ≤ 600 MB)`,
  ].join('\n');
}

function serverMarkdown(r: ServerBenchResult): string {
  const o = r.chat_overhead;
  return [
    '`/v1/route` (encoder prefill at the bundle layers + probes + policy) under autocannon on loopback, a new prompt for every request (one prompt per encoder decode, the default):',
    '',
    '| connections | p50 ms | p97.5 ms | requests/s | errors |',
    '|---|---|---|---|---|',
    ...(['concurrency_1', 'concurrency_16'] as const).map((k) => {
      const c = r.route[k];
      return `| ${k === 'concurrency_1' ? 1 : 16} | ${c.p50_ms} | ${c.p95_ms} | ${c.requests_per_s.toFixed(2)} | ${c.errors} |`;
    }),
    '',
    `Chat completion (1 output token) to a loopback upstream serving the local model, ${o.direct_upstream_ms.n} interleaved requests per path:`,
    '',
    '| path | p50 ms | p95 ms |',
    '|---|---|---|',
    `| straight to the upstream | ${o.direct_upstream_ms.p50} | ${o.direct_upstream_ms.p95} |`,
    `| through the router, tier named (no routing) | ${o.via_router_bypass_ms.p50} | ${o.via_router_bypass_ms.p95} |`,
    `| through the router, \`model: mechroute\` | ${o.via_router_routed_ms.p50} | ${o.via_router_routed_ms.p95} |`,
    '',
    `Routing overhead (p50, routed − direct): **${o.routing_overhead_p50_ms} ms**.`,
  ].join('\n');
}

if (suite === 'server') {
  const seconds = Number(values.seconds);
  const result = await runServerBench({ seconds, chatRequests: Number(values.runs) }, log);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  writeResults(
    'server',
    result,
    serverMarkdown(result),
    `npm run bench -- server --seconds ${seconds} --runs ${values.runs}`,
  );
} else if (suite === 'encoder') {
  const runs = Number(values.runs);
  const result = await runEncoderBench(
    { modelPath: defaultEncoderPath(), runs, promptTokens: 128, throughputPrompts: 48 },
    log,
  );
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  writeResults('encoder', result, encoderMarkdown(result), `npm run bench -- encoder --runs ${runs}`);
} else if (suite === 'steps') {
  const options = {
    traces: values.traces,
    prompts: Number(values.runs),
    maxTokens: Number(values['max-tokens']),
  };
  const result = await runStepsBench(options, log);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  writeResults(
    'steps',
    result,
    stepsMarkdown(result, options),
    `npm run bench -- steps --runs ${values.runs} --max-tokens ${values['max-tokens']}${tracesFlag}`,
  );
} else if (suite === 'prefixes') {
  const options = { traces: values.traces, trajectories: Number(values.runs), deepestLayer: 9 };
  const result = await runPrefixBench(options, log);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  writeResults(
    'prefixes',
    result,
    prefixMarkdown(result, options),
    `npm run bench -- prefixes --runs ${values.runs}${tracesFlag}`,
  );
} else if (suite === 'state') {
  const requests = Number(values.runs);
  const result = await runStateBench({ requests }, log);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  writeResults('state', result, stateMarkdown(result), `npm run bench -- state --runs ${requests}`);
} else if (suite === 'cascade-gate') {
  const resamples = Number(values.resamples);
  const problems = values['logprob-problems'];
  const result = await runCascadeGateBench({
    traces: values.traces,
    resamples,
    ...(problems === undefined ? {} : { logprobProblems: Number(problems) }),
    log,
  });
  writeResults(
    'cascade-gate',
    result,
    cascadeGateMarkdown(result, resamples),
    `npm run bench -- cascade-gate --resamples ${resamples}${problems === undefined ? '' : ` --logprob-problems ${problems}`}${tracesFlag}`,
  );
} else if (suite === 'reliability') {
  const size = values.size === 'small' ? 'small' : 'full';
  const defaults = sizeDefaults(size);
  const options = {
    size,
    parts: (values.parts?.split(',') as ReliabilityPart[] | undefined) ?? ALL_PARTS,
    fuzzRequests: values.fuzz === undefined ? defaults.fuzzRequests : Number(values.fuzz),
    loadSeconds: values.minutes === undefined ? defaults.loadSeconds : Number(values.minutes) * 60,
    clients: values.clients === undefined ? defaults.clients : Number(values.clients),
    seed: Number(values.seed),
    upstream: values.upstream === 'local' ? 'local' : 'scripted',
    chatMix: values.chat === 'named' ? 'named' : 'mixed',
    label: values.label ?? size,
    ...(values['server-node-options'] ? { serverNodeOptions: values['server-node-options'].split(' ') } : {}),
  } as const;
  const t0 = performance.now();
  const result = await runReliability(options, (line) =>
    log(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${line}`),
  );
  process.stdout.write(
    `${JSON.stringify({ ...result, load: result.load && omitSamples(result.load) }, null, 2)}\n`,
  );
  const command = `npm run bench -- reliability${process.argv.slice(3).length ? ` ${process.argv.slice(3).join(' ')}` : ''}`;
  writeReliabilityResults(
    result,
    command,
    { json: join(packageRoot, 'bench-results'), markdown: values['no-markdown'] ? undefined : packageRoot },
    log,
  );
} else if (suite === 'tiers') {
  // Leave-one-tier-out over a multi-tier file, on the lead's committed random split and cached activations.
  const sets = {
    rb: {
      file: 'routerbench-traces.jsonl',
      split: 'rb-random',
      store: 'activations-tail128',
      title: 'RouterBench, 8 tiers',
    },
    ze: {
      file: 'zeroeval-gsm8k-traces.jsonl',
      split: 'ze-random',
      store: 'activations-ladder',
      title: 'ZeroEval GSM8K, 30 tiers',
    },
  } as const;
  const set = sets[values.set as keyof typeof sets];
  if (!set) throw new Error(`--set: rb or ze, not ${values.set}`);
  const splits = join(packageRoot, 'docs', 'ladder', 'splits');
  const pooling = values.pooling === 'last' ? 'last' : 'mean';
  // --inner: 70/30 of the training prompts only (docs/ladder/splits/*-inner-*.ids), for choosing
  // between fitting rules without reading the held-out prompts.
  const split = values.inner ? `${set.split}-inner` : set.split;
  // --methods: only these fitting methods (an ablation; its own section of BENCHMARKS.md).
  const methods = values.methods?.split(',').map((m) => TierFitSchema.shape.method.parse(m));
  const key = `${values.set}${values.inner ? '-inner' : ''}${methods ? `-${methods.join('+')}` : ''}`;
  const result = await benchTiers({
    tracesFile: join(SHARED_DATA, set.file),
    trainIds: join(splits, `${split}-train.ids`),
    testIds: join(splits, `${split}-test.ids`),
    storeDir: join(mechrouteHome(), set.store),
    layers: values.layers.split(',').map(Number),
    pooling,
    randomRepeats: Number(values.repeats),
    ...(methods ? { fit: { methods } } : {}),
    onProgress: log,
  });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  writeResults(
    `tiers-${key}`,
    result,
    tiersMarkdown(result, `${set.title} (\`${split}\` split)`),
    `nice -n 10 npm run bench -- tiers --set ${values.set} --layers ${values.layers} --pooling ${pooling} --repeats ${values.repeats}${values.inner ? ' --inner' : ''}${methods ? ` --methods ${methods.join(',')}` : ''}`,
  );
} else {
  log(
    `unknown benchmark suite "${suite}"; available: encoder, server, steps, prefixes, state, cascade-gate, reliability, tiers`,
  );
  process.exitCode = 2;
}
