import { EncoderHost, EncoderHostOptionsSchema } from '../encoder/encoder-host.js';
import { InvalidFileError } from '../errors.js';
import { DEFAULT_ENCODER_MODEL } from '../models/manifest.js';
import { resolveCachedModel } from '../models/manifest-registry.js';
import { type JsonlLineError, readTraces } from '../traces/jsonl-reader.js';
import { promptText, type Trace } from '../traces/trace-schema.js';
import { ActivationStore } from './activation-store.js';
import {
  encodeStep,
  hostLimitsFor,
  nextStep,
  type StepLimits,
  type StoreShape,
  storeShape,
} from './encode-steps.js';
import { stratifiedSample } from './sampling.js';
import { promptHash } from './store-format.js';

export interface ExtractOptions {
  tracesFile: string;
  /** Encoder model name (a manifest in models/); default the default encoder. */
  model?: string;
  /** The first N traces (after sampling). */
  limit?: number;
  /** A seeded random subset of N traces, stratified by `dataset` and `subject`. */
  sample?: number;
  seed?: number;
  /** Prompts per step: each step is one batched decode (default 8; 1 = every prompt decoded alone). */
  batch?: number;
  /** Tokens per step at most (default 512, the encoder's own batch budget); a longer prompt goes alone. */
  batchTokens?: number;
  flushEvery?: number;
  /**
   * Prompt tokens read at most: longer prompts keep their BOS and their last tokens (the encoder's
   * truncation). Default: the encoder's context. A store holds one setting; a router reading such a
   * store's probes must run its encoder with the same limit.
   */
  maxPromptTokens?: number;
  /** Store directory; default `<mechroute home>/activations/<encoder sha256>/`. */
  storeDir?: string;
  /** An already loaded host of the same model (tests share one); otherwise one is created and disposed. */
  encoder?: EncoderHost;
  /** Stops after the step in flight; what was encoded is kept and flushed. */
  signal?: AbortSignal;
  /** Called once before encoding (done = 0) and after every step. */
  onProgress?: (progress: ExtractProgress) => void;
}

export interface ExtractProgress {
  /** Prompts to encode in this run (cached ones excluded). */
  total: number;
  done: number;
  tokens: number;
  elapsedMs: number;
}

export interface ExtractSummary {
  traces_file: string;
  store: string;
  encoder: { name: string; sha256: string };
  lines: number;
  bad_lines: number;
  /** Every line that was not extracted, with its line number and reason. */
  errors: JsonlLineError[];
  /** Traces chosen by --sample / --limit. */
  selected: number;
  /** Distinct prompt texts among them (traces that repeat a prompt share one record). */
  unique_prompts: number;
  skipped_cached: number;
  encoded: number;
  /** Prompts the encoder refused, by trace id; they were not stored. */
  failed: { id: string; reason: string }[];
  tokens: number;
  truncated: number;
  /** Records decoded together with other prompts (see ActivationRecord.batched). */
  batched: number;
  seconds: number;
  prompts_per_second: number;
  store_records: number;
  store_bytes_per_record: number;
  /** The run stopped on a signal before encoding everything; running it again resumes. */
  interrupted: boolean;
}

/** The stratum of a trace: its dataset and, inside it, its subject, when they are given. */
const stratumOf = (trace: Trace): string => `${trace.dataset ?? ''}\u0000${trace.subject ?? ''}`;

/**
 * Encodes the prompts of a trace file at every layer with both poolings and appends them to the
 * activation store, skipping prompts already there. Safe to interrupt at any point: rerunning continues
 * where the last durable flush left off.
 */
export async function extractActivations(options: ExtractOptions): Promise<ExtractSummary> {
  const started = performance.now();
  const batch = options.batch ?? 8;
  const { traces, errors, lines } = await readTraces(options.tracesFile);

  let selected = traces;
  if (options.sample !== undefined)
    selected = stratifiedSample(traces, options.sample, options.seed ?? 0, stratumOf);
  if (options.limit !== undefined) selected = selected.slice(0, options.limit);

  const prompts = new Map<string, { text: string; id: string }>();
  for (const trace of selected) {
    const text = promptText(trace);
    const hash = promptHash(text);
    if (!prompts.has(hash)) prompts.set(hash, { text, id: trace.id });
  }

  const { manifest, path } = resolveCachedModel(options.model ?? DEFAULT_ENCODER_MODEL);
  const encoderId = { name: manifest.name, sha256: manifest.sha256 };
  const defaults = EncoderHostOptionsSchema.parse({
    modelPath: path,
    ...(options.maxPromptTokens === undefined ? {} : { maxPromptTokens: options.maxPromptTokens }),
  });
  const limits: StepLimits = {
    prompts: batch,
    tokens: Math.min(options.batchTokens ?? 512, defaults.contextTokens),
  };
  const maxPromptTokens = Math.min(defaults.maxPromptTokens ?? Infinity, defaults.contextTokens);
  const hostOptions = { ...defaults, ...hostLimitsFor(limits, maxPromptTokens) };
  // The store is opened from the manifest, before the model loads: a locked or mismatched store fails
  // at once, and a fully cached run never loads the model.
  const shape = storeShape(options.encoder?.info.layers ?? manifest.layers);
  const store = await ActivationStore.open({
    encoder: encoderId,
    ...shape,
    width: options.encoder?.info.embeddingWidth ?? manifest.embedding_width,
    maxPromptTokens: options.encoder?.info.maxPromptTokens ?? maxPromptTokens,
    ...(options.storeDir === undefined ? {} : { dir: options.storeDir }),
    ...(options.flushEvery === undefined ? {} : { flushEvery: options.flushEvery }),
  });
  try {
    const todo = [...prompts].filter(([hash]) => !store.has(hash));
    let run = emptyRun(todo.length);
    if (todo.length > 0 && !options.signal?.aborted) {
      const encoder = options.encoder ?? (await EncoderHost.create(hostOptions));
      try {
        if (
          encoder.info.layers !== manifest.layers ||
          encoder.info.embeddingWidth !== manifest.embedding_width
        ) {
          throw new InvalidFileError(
            'model manifest for',
            manifest.name,
            `it says ${manifest.layers} layers × ${manifest.embedding_width}, the weights have ` +
              `${encoder.info.layers} × ${encoder.info.embeddingWidth}`,
          );
        }
        run = await encodeInto(store, encoder, todo, shape, limits, options);
      } finally {
        if (!options.encoder) await encoder.dispose();
      }
    }
    await store.close();
    const { encodeSeconds, ...counts } = run;
    return {
      traces_file: options.tracesFile,
      store: store.dir,
      encoder: encoderId,
      lines,
      bad_lines: errors.length,
      errors,
      selected: selected.length,
      unique_prompts: prompts.size,
      skipped_cached: prompts.size - todo.length,
      ...counts,
      seconds: (performance.now() - started) / 1000,
      prompts_per_second: encodeSeconds > 0 ? run.encoded / encodeSeconds : 0,
      store_records: store.size,
      store_bytes_per_record: store.recordBytes,
    };
  } finally {
    await store.close();
  }
}

function emptyRun(total: number): EncodeRun {
  return {
    encoded: 0,
    failed: [],
    tokens: 0,
    truncated: 0,
    batched: 0,
    encodeSeconds: 0,
    interrupted: total > 0,
  };
}

interface EncodeRun {
  encoded: number;
  failed: { id: string; reason: string }[];
  tokens: number;
  truncated: number;
  batched: number;
  encodeSeconds: number;
  interrupted: boolean;
}

async function encodeInto(
  store: ActivationStore,
  encoder: EncoderHost,
  todo: [string, { text: string; id: string }][],
  shape: StoreShape,
  limits: StepLimits,
  options: ExtractOptions,
): Promise<EncodeRun> {
  const run = emptyRun(todo.length);
  const started = performance.now();
  const report = () =>
    options.onProgress?.({
      total: todo.length,
      done: run.encoded + run.failed.length,
      tokens: run.tokens,
      elapsedMs: performance.now() - started,
    });
  report();

  const tokenCounts: number[] = [];
  const tokensOf = (i: number) =>
    (tokenCounts[i] ??= Math.min(
      encoder.tokenize(todo[i]![1].text.toWellFormed()).length,
      encoder.info.maxPromptTokens,
    ));
  // Steps run one after another (no overlap), so each is its own decode; see encodeStep.
  for (let start = 0; start < todo.length && !options.signal?.aborted; ) {
    const end = nextStep(start, todo.length, tokensOf, limits);
    const step = todo.slice(start, end);
    const outcomes = await encodeStep(
      encoder,
      step.map(([, prompt]) => prompt.text),
      shape,
    );
    for (const [k, outcome] of outcomes.entries()) {
      const [hash, prompt] = step[k]!;
      if (!outcome.ok) {
        const reason = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
        run.failed.push({ id: prompt.id, reason });
        continue;
      }
      await store.append(hash, outcome.record);
      run.encoded += 1;
      run.tokens += outcome.record.tokens;
      if (outcome.record.truncated) run.truncated += 1;
      if (outcome.record.batched) run.batched += 1;
    }
    report();
    start = end;
  }
  run.interrupted = run.encoded + run.failed.length < todo.length;
  run.encodeSeconds = (performance.now() - started) / 1000;
  return run;
}
