import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import {
  type EncodedBothPoolings,
  type EncodedPrompt,
  EncoderHost,
  type Pooling,
  PoolingSchema,
} from '../../encoder/encoder-host.js';
import { cosine } from '../../encoder/vector-math.js';
import { FileUnreadableError } from '../../errors.js';
import { DEFAULT_ENCODER_MODEL } from '../../models/manifest.js';
import { resolveCachedModel } from '../../models/manifest-registry.js';
import { CliOptionError } from '../cli-flags.js';

interface EncodeCommandOptions {
  layers: string;
  pooling: string;
  model: string;
  modelPath?: string;
  file?: string;
  json?: boolean;
  demo?: boolean;
}

const DEMO_PROMPTS = [
  'What is 2 + 2?',
  'Question: Which enzyme unwinds the DNA double helix during replication?\nA. Ligase\nB. Helicase\nC. Primase\nD. Topoisomerase\nAnswer:',
  'Prove that for every prime p > 3, p^2 - 1 is divisible by 24, and explain where the argument uses primality.',
];

/** `--layers 6,9`, `--layers all` or `--layers final` (after the final norm), checked against the model. */
export function parseLayers(spec: string, blockCount: number): number[] {
  if (spec === 'all') return Array.from({ length: blockCount + 1 }, (_, i) => i);
  return spec.split(',').map((part) => {
    const trimmed = part.trim();
    if (trimmed === 'final') return blockCount;
    if (!/^\d+$/.test(trimmed)) {
      throw new CliOptionError('encode', `--layers: "${trimmed}" is not a layer index, "final" or "all"`);
    }
    return Number(trimmed);
  });
}

/** Pooling "both" asks for the mean only where llama.cpp can give it (see `encodeBothPoolings`). */
async function encodeWithPooling(
  encoder: EncoderHost,
  prompt: string | Uint8Array,
  layers: number[],
  pooling: Pooling,
) {
  if (pooling === 'both') return encoder.encodeBothPoolings(prompt, layers);
  const [result] = await encoder.encode([prompt], { layers, pooling });
  return result!;
}

type MergedResult = EncodedPrompt | EncodedBothPoolings;

function toJson(result: MergedResult, model: string) {
  const vectors = (list?: (Float32Array | undefined)[]) => list?.map((v) => (v ? Array.from(v) : null));
  return {
    model,
    tokens: result.tokens,
    truncated: result.truncated,
    layers: result.layers,
    last: vectors(result.last),
    mean: vectors(result.mean),
    decode_ms: Math.round(result.decodeMs * 100) / 100,
  };
}

function describe(result: MergedResult): string {
  const norm = (v?: Float32Array) =>
    v
      ? Math.hypot(...v)
          .toFixed(1)
          .padStart(9)
      : '        -';
  const head = (v?: Float32Array) => (v ? Array.from(v.slice(0, 4), (x) => x.toFixed(3)).join(', ') : '');
  const lines = [
    `tokens: ${result.tokens}${result.truncated ? ' (truncated)' : ''}, decode ${result.decodeMs.toFixed(1)} ms`,
  ];
  lines.push('layer   |last|    |mean|   last[0..4]');
  result.layers.forEach((layer, i) => {
    lines.push(
      `${String(layer).padStart(5)} ${norm(result.last?.[i])} ${norm(result.mean?.[i])}   ${head(result.last?.[i])}`,
    );
  });
  return `${lines.join('\n')}\n`;
}

async function runDemo(encoder: EncoderHost, write: (s: string) => void): Promise<void> {
  const layers = [6, 9, 12];
  write(`encoder: ${encoder.info.description} (${encoder.info.variant}), ${encoder.info.layers} blocks\n`);
  const results = await Promise.all(
    DEMO_PROMPTS.map((p) => encoder.encode([p], { layers, pooling: 'last' })),
  );
  results.forEach(([r], i) => {
    write(`\n#${i + 1} ${JSON.stringify(DEMO_PROMPTS[i]!.slice(0, 70))}…\n`);
    write(`   ${r!.tokens} tokens, batch of ${r!.batchSize}, decode ${r!.decodeMs.toFixed(0)} ms\n`);
  });
  write(`\ncosine similarity of last-token activations at layer ${layers[1]}:\n`);
  const vec = (i: number) => results[i]![0]!.last![1]!;
  for (let i = 0; i < results.length; i++) {
    const row = results.map((_, j) => cosine(vec(i), vec(j)).toFixed(3));
    write(`   #${i + 1}  ${row.join('  ')}\n`);
  }
}

/** `mechroute encode`: one prompt's activations at chosen layers, from the real encoder model. */
export function registerEncodeCommand(program: Command): void {
  program
    .command('encode')
    .description('run the prefill of a prompt through the encoder and print per-layer activations')
    .argument('[text]', 'the prompt (or use --file)')
    .option(
      '--layers <list>',
      'comma-separated block indices, "final" (after the final norm) or "all"',
      '6,9',
    )
    .option('--pooling <kind>', 'last | mean | both', 'both')
    .option('--model <name>', 'encoder model from models/*.json', DEFAULT_ENCODER_MODEL)
    .option('--model-path <file>', 'a GGUF file to use instead of a named model')
    .option('--file <path>', 'read the prompt from a file (must be UTF-8)')
    .option('--json', 'print one JSON object with the vectors')
    .option('--demo', 'encode a few example prompts and compare them')
    .action(async (text: string | undefined, options: EncodeCommandOptions, command: Command) => {
      const write = (s: string) =>
        (command.configureOutput().writeOut ?? process.stdout.write.bind(process.stdout))(s);
      const pooling = PoolingSchema.safeParse(options.pooling);
      if (!pooling.success) throw new CliOptionError('encode', '--pooling must be last, mean or both');
      const prompt: string | Uint8Array | undefined = options.file
        ? await readFile(options.file).catch((error: unknown) => {
            throw new FileUnreadableError(options.file!, error);
          })
        : text;
      if (prompt === undefined && !options.demo) {
        throw new CliOptionError('encode', 'give the prompt as an argument, with --file, or use --demo');
      }
      const modelPath = options.modelPath ?? resolveCachedModel(options.model).path;
      await using encoder = await EncoderHost.create({ modelPath });
      if (options.demo) {
        await runDemo(encoder, write);
        return;
      }
      const layers = parseLayers(options.layers, encoder.info.layers);
      const result = await encodeWithPooling(encoder, prompt!, layers, pooling.data);
      write(
        options.json
          ? `${JSON.stringify(toJson(result, options.modelPath ?? options.model))}\n`
          : describe(result),
      );
    });
}
