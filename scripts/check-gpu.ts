/**
 * `npm run check:gpu`: on a machine with a CUDA GPU, confirms the encoder runs on llama.cpp's CUDA
 * variant, that its activations match the CPU variant's within a stated tolerance, and prints latency.
 * Without a GPU it says so and exits 0.
 *
 * The CPU reference runs in a child process: the CPU and CUDA builds of libllama export the same
 * symbols, so one process holds only one of them.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EncoderHost } from '../src/encoder/encoder-host.js';
import { cosine, relativeError } from '../src/encoder/vector-math.js';
import { DEFAULT_ENCODER_MODEL } from '../src/models/manifest.js';
import { resolveCachedModel } from '../src/models/manifest-registry.js';

/** Different kernels round differently and Gemma amplifies it with depth (see BENCHMARKS.md). */
const MIN_COSINE = 0.99;
const MAX_RELATIVE_ERROR = 0.1;

const PROMPTS = [
  'Question: Which planet has the shortest year?\nA. Venus\nB. Mercury\nC. Mars\nD. Earth\nAnswer:',
  'Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?',
  'Summarise the causes of the French Revolution in two sentences.',
];

interface Capture {
  variant: string;
  devices: string[];
  layers: number[];
  /** [prompt][layer] last-token vectors. */
  vectors: number[][][];
  middleLayerMs: number[];
}

async function capture(gpu: 'cuda' | false): Promise<Capture> {
  const { path } = resolveCachedModel(DEFAULT_ENCODER_MODEL);
  await using encoder = await EncoderHost.create({ modelPath: path, gpu });
  const layers = Array.from({ length: encoder.info.layers + 1 }, (_, i) => i);
  const vectors: number[][][] = [];
  for (const prompt of PROMPTS) {
    const [r] = await encoder.encode([prompt], { layers, pooling: 'last' });
    vectors.push(r!.last!.map((v) => Array.from(v)));
  }
  const middle = Math.floor(encoder.info.layers / 2);
  const middleLayerMs: number[] = [];
  for (let i = 0; i < 21; i++) {
    const t0 = performance.now();
    await encoder.encode([PROMPTS[i % PROMPTS.length]!], { layers: [middle], pooling: 'both' });
    if (i > 0) middleLayerMs.push(performance.now() - t0);
  }
  return { variant: encoder.info.variant, devices: encoder.info.devices, layers, vectors, middleLayerMs };
}

const compare = (gpu: number[], cpu: number[]) => ({
  cosine: cosine(gpu, cpu),
  relative: relativeError(gpu, cpu),
});

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

async function main(): Promise<number> {
  if (process.argv.includes('--cpu-child')) {
    process.stdout.write(JSON.stringify(await capture(false)));
    return 0;
  }
  const { getLlama } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: 'auto', build: 'never' });
  if (llama.gpu !== 'cuda') {
    console.log(`no CUDA GPU in use here (node-llama-cpp chose: ${llama.gpu || 'CPU'}); nothing to check.`);
    return 0;
  }
  const gpuRun = await capture('cuda');
  console.log(`encoder variant: ${gpuRun.variant}; devices: ${gpuRun.devices.join('; ')}`);
  if (!gpuRun.variant.includes('cuda')) {
    console.error('FAIL: node-llama-cpp uses CUDA but the activation addon did not load its CUDA variant');
    return 1;
  }
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--cpu-child'], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (child.status !== 0) {
    console.error(`FAIL: CPU reference run failed:\n${child.stderr}`);
    return 1;
  }
  const cpuRun = JSON.parse(child.stdout) as Capture;
  let worstCosine = 1;
  let worstRelative = 0;
  gpuRun.layers.forEach((layer, li) => {
    const rows = PROMPTS.map((_, pi) => compare(gpuRun.vectors[pi]![li]!, cpuRun.vectors[pi]![li]!));
    const cos = Math.min(...rows.map((r) => r.cosine));
    const rel = Math.max(...rows.map((r) => r.relative));
    worstCosine = Math.min(worstCosine, cos);
    worstRelative = Math.max(worstRelative, rel);
    console.log(
      `layer ${String(layer).padStart(2)}: min cosine ${cos.toFixed(5)}, max relative error ${rel.toExponential(2)}`,
    );
  });
  const gpuMs = median(gpuRun.middleLayerMs);
  const cpuMs = median(cpuRun.middleLayerMs);
  console.log(
    `middle-layer decision p50: CUDA ${gpuMs.toFixed(2)} ms, CPU ${cpuMs.toFixed(2)} ms (${(cpuMs / gpuMs).toFixed(1)}x)`,
  );
  const ok = worstCosine >= MIN_COSINE && worstRelative <= MAX_RELATIVE_ERROR;
  console.log(
    `${ok ? 'OK' : 'FAIL'}: CUDA vs CPU activations, worst cosine ${worstCosine.toFixed(5)} (need >= ${MIN_COSINE}), ` +
      `worst relative error ${worstRelative.toExponential(2)} (need <= ${MAX_RELATIVE_ERROR})`,
  );
  return ok ? 0 : 1;
}

process.exitCode = await main();
