import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_PROBES_PATH } from '../src/config/config-loader.js';
import { type LatencySummary, summarize } from '../src/metrics/quantile.js';
import { DEFAULT_ENCODER_MODEL } from '../src/models/manifest.js';
import { parseProbeBundle } from '../src/probes/probe-bundle.js';
import { type RunningServer, startServer } from '../src/server/server.js';
import { segmentSteps, stepPrefix } from '../src/steps/segment-steps.js';
import { asStepBundle, scoreStepPrefix } from '../src/steps/step-scorer.js';
import { readTraces } from '../src/traces/jsonl-reader.js';
import { promptText } from '../src/traces/trace-schema.js';
import { sharedEncoder } from '../test/support/default-encoder.js';
import { createUpstreamModel, startOpenAIUpstream } from '../test/support/openai-upstream.js';
import { localTierConfig, remoteTierConfig, writeServerConfig } from '../test/support/server-config.js';

export interface StepsBenchOptions {
  traces: string;
  /** GSM8K prompts used (the first ones of the file with a mixtral response). */
  prompts: number;
  /** max_tokens of each live answer. */
  maxTokens: number;
}

export interface StepsBenchResult {
  scoring: { steps: number; input_tokens_mean: number; latency_ms: LatencySummary }[];
  live: { path: string; latency_ms: LatencySummary; steps_mean: number; switches_mean: number }[];
}

const STEP_INFO = {
  segmentation: { mode: 'lines', min_chars: 8, max_steps: 64 },
  text_format: 'prompt-blank-line-steps',
} as const;

/**
 * What live per-step routing costs in time: (1) one step decision — the encoder over prompt + the
 * first k steps and the probe — by k, on real GSM8K chains of thought; (2) whole answers from the
 * local model through the router, in one call (routing bypassed) vs. step by step at τ = 0 (never
 * switches: pure stepping overhead) and τ = 1 (switches to a loopback upstream serving the same model).
 * The step bundle is the shipped request-level bundle with a `steps` field: timing does not depend on
 * what the probe learned.
 */
export async function runStepsBench(
  options: StepsBenchOptions,
  log: (line: string) => void,
): Promise<StepsBenchResult> {
  const { traces } = await readTraces(options.traces);
  const sample = traces.filter((t) => t.responses?.['mixtral-8x7b-instruct']).slice(0, options.prompts);
  const bundle = parseProbeBundle(
    { ...JSON.parse(await readFile(DEFAULT_PROBES_PATH, 'utf8')), steps: STEP_INFO },
    DEFAULT_PROBES_PATH,
  );
  const step = asStepBundle(bundle, 'mixtral-8x7b-instruct', DEFAULT_PROBES_PATH);
  const encoder = await sharedEncoder();
  const scoring: StepsBenchResult['scoring'] = [];
  log(`steps bench: step decisions on ${sample.length} GSM8K chains`);
  for (const k of [0, 1, 2, 4, 8]) {
    const times: number[] = [];
    const tokens: number[] = [];
    for (const trace of sample) {
      const response = trace.responses!['mixtral-8x7b-instruct']!;
      const steps = segmentSteps(response, STEP_INFO.segmentation);
      if (steps.length < k) continue;
      const prompt = promptText(trace);
      const prefix = stepPrefix(response, steps, k);
      await scoreStepPrefix(encoder, step, prompt, prefix); // warm: the timed call is the second
      const t0 = performance.now();
      await scoreStepPrefix(encoder, step, prompt, prefix);
      times.push(performance.now() - t0);
      tokens.push(encoder.tokenize(k === 0 ? prompt : `${prompt}\n\n${prefix.trim()}`).length);
    }
    scoring.push({
      steps: k,
      input_tokens_mean: Math.round(tokens.reduce((a, b) => a + b, 0) / (tokens.length || 1)),
      latency_ms: summarize(times),
    });
  }

  const dir = await mkdtemp(join(tmpdir(), 'mechroute-steps-bench-'));
  const local = await createUpstreamModel(2);
  const upstream = await startOpenAIUpstream({ model: local });
  let server: RunningServer | undefined;
  try {
    await writeFile(join(dir, 'steps.json'), JSON.stringify(bundle));
    const configFile = await writeServerConfig(dir, {
      server: { host: '127.0.0.1', port: 0 },
      encoder: { model: DEFAULT_ENCODER_MODEL },
      tiers: [
        localTierConfig({ context_window: 2048 }),
        remoteTierConfig('gpt-4-1106-preview', [{ base_url: upstream.baseUrl }]),
      ],
      steps: { probes: 'steps.json', probe_tier: 'mixtral-8x7b-instruct', max_switches: 2, max_steps: 8 },
    });
    server = await startServer({ configPath: configFile, port: 0, logLevel: 'silent', watchPolicy: false });
    const paths: { path: string; headers: Record<string, string>; model: string }[] = [
      { path: 'one call (tier named, no routing)', headers: {}, model: 'gemma-3-270m' },
      {
        path: 'steps, τ = 0 (never switches)',
        headers: { 'x-mechroute-mode': 'steps', 'x-mechroute-step-threshold': '0' },
        model: 'mechroute',
      },
      {
        path: 'steps, τ = 1 (switches to the upstream)',
        headers: { 'x-mechroute-mode': 'steps', 'x-mechroute-step-threshold': '1' },
        model: 'mechroute',
      },
    ];
    const samples = paths.map(() => ({
      times: [] as number[],
      steps: [] as number[],
      switches: [] as number[],
    }));
    log(`steps bench: ${sample.length} live answers per path, interleaved, max_tokens ${options.maxTokens}`);
    for (const [i, trace] of [sample[0]!, ...sample].entries()) {
      for (const [j, p] of paths.entries()) {
        const t0 = performance.now();
        const response = await fetch(`${server.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...p.headers },
          body: JSON.stringify({
            model: p.model,
            messages: [{ role: 'user', content: promptText(trace) }],
            max_tokens: options.maxTokens,
            temperature: 0,
          }),
        });
        if (!response.ok) throw new Error(`${p.path}: ${response.status} ${await response.text()}`);
        // biome-ignore lint/suspicious/noExplicitAny: the extension is read for two counts only
        const body: any = await response.json();
        if (i === 0) continue; // warm-up round
        samples[j]!.times.push(performance.now() - t0);
        samples[j]!.steps.push(body.mechroute?.steps?.length ?? 1);
        samples[j]!.switches.push(body.mechroute?.switches?.length ?? 0);
      }
    }
    const mean = (xs: number[]) => Math.round((xs.reduce((a, b) => a + b, 0) / (xs.length || 1)) * 100) / 100;
    return {
      scoring,
      live: paths.map((p, j) => ({
        path: p.path,
        latency_ms: summarize(samples[j]!.times),
        steps_mean: mean(samples[j]!.steps),
        switches_mean: mean(samples[j]!.switches),
      })),
    };
  } finally {
    await server?.close();
    await upstream.close();
    await local.dispose();
    await (await sharedEncoder()).dispose();
    await rm(dir, { recursive: true, force: true });
  }
}

export function stepsMarkdown(r: StepsBenchResult, options: StepsBenchOptions): string {
  return [
    'One step decision (encoder over prompt + first k steps, mean pooling at the bundle layer, + probe), on',
    `the first ${options.prompts} GSM8K chains of thought of Mixtral in \`${options.traces.split('/').at(-1)}\`:`,
    '',
    '| steps k | input tokens (mean) | p50 ms | p95 ms | n |',
    '|---|---|---|---|---|',
    ...r.scoring
      .filter((s) => s.latency_ms.n > 0)
      .map(
        (s) =>
          `| ${s.steps} | ${s.input_tokens_mean} | ${s.latency_ms.p50} | ${s.latency_ms.p95} | ${s.latency_ms.n} |`,
      ),
    '',
    `Whole answers from the local model (max_tokens ${options.maxTokens}, greedy) through the router, interleaved:`,
    '',
    '| path | p50 ms | p95 ms | steps (mean) | switches (mean) |',
    '|---|---|---|---|---|',
    ...r.live.map(
      (l) =>
        `| ${l.path} | ${l.latency_ms.p50} | ${l.latency_ms.p95} | ${l.steps_mean} | ${l.switches_mean} |`,
    ),
  ].join('\n');
}
