import { availableParallelism } from 'node:os';
import { z } from 'zod';
import {
  EncoderDisposedError,
  EncoderOverloadedError,
  EncoderQueueFullError,
  InvalidEncodeRequestError,
} from '../errors.js';
import { sharedPrefixLength } from '../token-prefix.js';
import type { AddonActivationContext, AddonActivationModel, AddonCaptureResult } from './addon-types.js';
import { DecodeCost } from './decode-cost.js';
import { loadActivationBinding } from './native-binding.js';
import { promptWindow, promptWindowTokens } from './prompt-window.js';

/** Graph tensor names of a block's output per architecture, where it is not llama.cpp's usual `l_out`. */
const LAYER_TENSOR_PREFIX: Record<string, string> = {};

export const PoolingSchema = z.enum(['last', 'mean', 'both']);
export type Pooling = z.infer<typeof PoolingSchema>;

export const EncodeOptionsSchema = z.object({
  /** Block indices 0..n-1; n (the block count) is the output after the final norm. */
  layers: z.array(z.number().int().nonnegative()).min(1),
  pooling: PoolingSchema.default('both'),
});
export type EncodeOptions = z.input<typeof EncodeOptionsSchema>;

export const EncoderHostOptionsSchema = z.object({
  modelPath: z.string().min(1),
  gpu: z.union([z.enum(['auto', 'cuda', 'vulkan']), z.literal(false)]).default('auto'),
  /** Tokens the encoder context holds: the longest single decode. */
  contextTokens: z.number().int().min(16).default(2048),
  /**
   * Token budget for batching several prompts into one decode (a longer prompt still runs, alone).
   * Sequences in one decode share a unified KV buffer, so attention work grows with the square of the
   * batch's tokens; a modest budget keeps batching from costing more than it saves on CPU.
   */
  batchTokens: z.number().int().min(16).default(512),
  /** Longest prompt accepted; longer ones are truncated or rejected (see `overflow`). */
  maxPromptTokens: z.number().int().min(2).optional(),
  /**
   * Distinct prompts per decode. 1 by default: llama.cpp's CPU kernels give a prompt slightly different
   * activations in a batch than alone (up to a few per cent at the middle blocks, measured), which would
   * make a routing decision depend on concurrent traffic — and on CPU batching gains no throughput
   * (BENCHMARKS.md). Raise it for throughput on a GPU. Identical prompts in flight share a decode either way.
   */
  maxBatchPrompts: z.number().int().min(1).max(256).default(1),
  threads: z
    .number()
    .int()
    .min(1)
    .default(() => availableParallelism()),
  /** Prompts allowed to wait; a call that would overflow it is rejected whole. */
  queueLimit: z.number().int().min(1).default(1024),
  /**
   * Admission by measured throughput: a call is refused at once (EncoderOverloadedError, with the wait
   * as its retry-after) when the work already queued would take longer than this to clear at the
   * decode cost measured so far (src/encoder/decode-cost.ts) — instead of waiting in a queue it could
   * not leave in time. An idle encoder takes any call. Unset (the default, for offline work such as
   * extraction) nothing is refused for waiting; the server sets it.
   */
  maxQueueWaitMs: z.number().int().min(1).optional(),
  /**
   * What a prompt longer than `maxPromptTokens` becomes: its last tokens (`truncate-left`, BOS kept),
   * its first `headTokens` and its last tokens (`head-tail`: a system prompt or instructions at the start
   * and the question at the end both stay), or an error (`reject`).
   */
  overflow: z.enum(['truncate-left', 'head-tail', 'reject']).default('truncate-left'),
  /** Tokens kept from the start of an over-long prompt with `overflow: 'head-tail'` (BOS included). */
  headTokens: z.number().int().min(1).default(64),
  /**
   * llama.cpp's repacked CPU weights (faster GEMM kernels). Off by default: with them a row's result
   * depends on how many rows its batch has, so the same prompt alone and in a batch differ (6 % at the
   * final norm measured). Without them a prompt is bit-identical alone and in small batches; past
   * ~64 tokens per decode the shared (unified) KV buffer still makes attention round differently for
   * every sequence but the first (1e-7 relative at block 0 up to a few 1e-2 at the last blocks,
   * measured) — a known limit: a router's decision may move that little with its neighbours.
   */
  repackWeights: z.boolean().default(false),
  /**
   * `encodePrefixes` reads a prefix out of the shared decode only from this many tokens on; shorter
   * ones are decoded alone. llama.cpp's CPU flash attention switches to a tiled kernel (other rounding)
   * once a decode has 64 query rows (GGML_FA_TILE_Q), so a prefix of 64+ tokens has bit-identical rows
   * alone and inside a longer decode, and a shorter one does not (0.5–3 % apart, measured).
   */
  sharedPrefixMinTokens: z.number().int().min(1).default(64),
});
export type EncoderHostOptions = z.input<typeof EncoderHostOptionsSchema>;

/** Per call: who may cancel it, and by when its result is needed. */
export interface EncodeCall {
  /** Aborting it drops the call's prompts from the queue, or stops their decode if it runs alone. */
  signal?: AbortSignal;
  /** Milliseconds from now within which the result is of use; a call that cannot make it is refused. */
  deadlineMs?: number;
}

export interface EncodedPrompt {
  /** Tokens actually encoded (after truncation). */
  tokens: number;
  truncated: boolean;
  layers: number[];
  /** Per requested layer, in `layers` order: the last token's residual stream. */
  last?: Float32Array[];
  /** Per requested layer: the mean over the prompt's tokens. */
  mean?: Float32Array[];
  queuedMs: number;
  /** Time of the batched decode this prompt was part of. */
  decodeMs: number;
  batchSize: number;
}

/** `encodeBothPoolings`' result: `mean` aligned with `layers`, undefined where there is none. */
export type EncodedBothPoolings = Omit<EncodedPrompt, 'mean'> & { mean: (Float32Array | undefined)[] };

export interface EncoderInfo {
  modelPath: string;
  architecture: string;
  description: string;
  layers: number;
  embeddingWidth: number;
  variant: string;
  gpu: string | false;
  devices: string[];
  contextTokens: number;
  maxPromptTokens: number;
  maxBatchPrompts: number;
}

interface QueueItem {
  tokens: Int32Array;
  truncated: boolean;
  layers: number[];
  pooling: Pooling;
  /** Token positions to read out (prefix ends); such an item decodes alone. Default: the last token. */
  ends?: Int32Array;
  enqueuedAt: number;
  /** One result per read-out position. */
  resolve: (results: EncodedPrompt[]) => void;
  reject: (error: unknown) => void;
  signal?: AbortSignal;
}

/**
 * Runs prompt prefills through the encoder model and hands back per-layer activations. Concurrent
 * calls share batched decodes: whatever is waiting when the previous decode ends goes into the next
 * one (up to `maxBatchPrompts` prompts and `batchTokens` tokens), with no added delay.
 */
export class EncoderHost implements AsyncDisposable {
  readonly info: EncoderInfo;
  private readonly model: AddonActivationModel;
  private readonly context: AddonActivationContext;
  private readonly options: z.output<typeof EncoderHostOptionsSchema>;
  private readonly maxPromptTokens: number;
  private readonly addsBos: boolean;
  private readonly queue: QueueItem[] = [];
  /** The decode in progress, if any. */
  private running: QueueItem[] = [];
  /** Measured decode cost (ms per token, a moving average): the basis of admission. */
  private readonly decodeCost = new DecodeCost();
  private cancelled = 0;
  private draining = false;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => {};
  private disposed = false;

  private constructor(
    model: AddonActivationModel,
    context: AddonActivationContext,
    options: z.output<typeof EncoderHostOptionsSchema>,
    binding: { variant: string; gpu: string | false; devices: string[] },
  ) {
    this.model = model;
    this.context = context;
    this.options = options;
    this.maxPromptTokens = promptWindowTokens(options.maxPromptTokens, options.contextTokens);
    const info = model.info;
    this.addsBos = info.addsBos;
    this.info = {
      modelPath: options.modelPath,
      architecture: info.architecture,
      description: info.description,
      layers: info.layers,
      embeddingWidth: info.embeddingWidth,
      ...binding,
      contextTokens: options.contextTokens,
      maxPromptTokens: this.maxPromptTokens,
      maxBatchPrompts: options.maxBatchPrompts,
    };
  }

  static async create(options: EncoderHostOptions): Promise<EncoderHost> {
    const parsed = EncoderHostOptionsSchema.parse(options);
    const binding = await loadActivationBinding(parsed.gpu);
    const model = await binding.addon.loadModel(parsed.modelPath, {
      gpuLayers: binding.gpu === false ? 0 : -1,
      useMmap: true,
      repack: parsed.repackWeights,
    });
    try {
      const architecture = model.info.architecture;
      const context = model.createContext({
        contextTokens: parsed.contextTokens,
        maxSequences: parsed.maxBatchPrompts,
        threads: parsed.threads,
        layerPrefix: LAYER_TENSOR_PREFIX[architecture] ?? 'l_out',
        flashAttention: true,
      });
      return new EncoderHost(model, context, parsed, {
        variant: binding.variant,
        gpu: binding.gpu,
        devices: binding.devices.map((d) => `${d.name} (${d.description})`),
      });
    } catch (error) {
      model.dispose();
      throw error;
    }
  }

  /** Token ids the encoder sees for `text` (with the model's BOS where it adds one, unless `addSpecial` is false). */
  tokenize(text: string, addSpecial = true): Int32Array {
    this.assertLive();
    return this.model.tokenize(text, addSpecial);
  }

  /**
   * Activations of each prompt at the requested layers. Strings are used as they are (lone surrogates
   * become U+FFFD); byte arrays must be valid UTF-8 and are rejected with the offending prompt's index
   * otherwise, so no prompt is silently altered.
   */
  async encode(
    prompts: readonly (string | Uint8Array)[],
    options: EncodeOptions,
    call: EncodeCall = {},
  ): Promise<EncodedPrompt[]> {
    this.assertLive();
    const parsed = EncodeOptionsSchema.safeParse(options);
    if (!parsed.success)
      throw new InvalidEncodeRequestError(`invalid encode options: ${parsed.error.message}`);
    const { layers, pooling } = parsed.data;
    this.assertLayers(layers, pooling);
    call.signal?.throwIfAborted();
    if (prompts.length === 0) return [];
    this.refuseIfBacklogged(prompts.length);
    const prepared = prompts.map((prompt, index) => this.prepare(prompt, index));
    this.refuseIfLate(prepared.length, tokenCount(prepared), call.deadlineMs);
    const enqueuedAt = performance.now();
    const results = prepared.map(
      ({ tokens, truncated }) =>
        new Promise<EncodedPrompt>((resolve, reject) => {
          this.enqueue({
            tokens,
            truncated,
            layers,
            pooling,
            enqueuedAt,
            resolve: ([one]) => resolve(one!),
            reject,
            ...(call.signal ? { signal: call.signal } : {}),
          });
        }),
    );
    this.drain();
    return Promise.all(results);
  }

  /**
   * Milliseconds the work already accepted needs before a new call's decode can start, at the rate
   * measured so far; undefined before the first decode has been timed.
   */
  estimatedWaitMs(): number | undefined {
    const decodes = this.queue.length + (this.running.length > 0 ? 1 : 0);
    return this.decodeCost.estimateMs(decodes, tokenCount(this.queue) + tokenCount(this.running));
  }

  /**
   * Refuses, at once and before its prompts are tokenized, a call the queue cannot hold or that would
   * wait past `maxQueueWaitMs`: under overload the refusals must cost next to nothing, and tokenizing a
   * long prompt on the event loop only to turn it away is what slowed them (and health checks) to seconds.
   */
  private refuseIfBacklogged(prompts: number): void {
    const wait = this.estimatedWaitMs();
    if (this.queue.length + prompts > this.options.queueLimit) {
      throw new EncoderQueueFullError(this.options.queueLimit, wait);
    }
    const limit = this.options.maxQueueWaitMs;
    if (limit !== undefined && wait !== undefined && !this.isIdle() && wait > limit) {
      throw new EncoderOverloadedError(
        `the encoder has ${Math.round(wait)} ms of work queued (limit encoder.max_queue_wait_ms = ${limit})`,
        wait,
      );
    }
  }

  /**
   * Refuses a tokenized call (already past `refuseIfBacklogged`, with nothing run in between) that could
   * not finish within its deadline behind the queued work. An idle encoder takes any call: nobody waits
   * behind it, its deadline still stops it, and only a decode that runs can correct an estimate gone
   * wrong (refusing everything would keep it wrong).
   */
  private refuseIfLate(prompts: number, tokens: number, deadlineMs: number | undefined): void {
    const wait = this.estimatedWaitMs();
    if (wait === undefined || deadlineMs === undefined || this.isIdle()) return;
    const own = this.decodeCost.estimateMs(prompts, tokens)!;
    if (wait + own > deadlineMs) {
      throw new EncoderOverloadedError(
        `the encoder cannot finish this prompt within the request's remaining ${Math.round(deadlineMs)} ms ` +
          `(${Math.round(wait)} ms queued, about ${Math.round(own)} ms of its own)`,
        wait,
      );
    }
  }

  private isIdle(): boolean {
    return this.queue.length === 0 && this.running.length === 0;
  }

  /**
   * Queues an item whose signal, once aborted, takes it out of the queue — or, when every prompt of
   * the running decode has been given up, stops that decode.
   */
  private enqueue(item: QueueItem): void {
    const { signal } = item;
    if (signal) {
      const reject = item.reject;
      const resolve = item.resolve;
      const onAbort = () => {
        const at = this.queue.indexOf(item);
        if (at >= 0) this.queue.splice(at, 1);
        else if (this.running.includes(item) && this.running.every((i) => i.signal?.aborted))
          this.context.cancel();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      item.resolve = (results) => {
        signal.removeEventListener('abort', onAbort);
        resolve(results);
      };
      item.reject = (error) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      };
    }
    this.queue.push(item);
  }

  /**
   * The last token at every one of `layers`, and the mean wherever llama.cpp computes every token's row
   * (not the last block nor the final norm: those `mean` entries are undefined). Two requests for one
   * prompt, which share one decode.
   */
  async encodeBothPoolings(
    prompt: string | Uint8Array,
    layers: number[],
    call: EncodeCall = {},
  ): Promise<EncodedBothPoolings> {
    const meanable = layers.filter((l) => l < this.info.layers - 1);
    const [[last], mean] = await Promise.all([
      this.encode([prompt], { layers, pooling: 'last' }, call),
      meanable.length > 0
        ? this.encode([prompt], { layers: meanable, pooling: 'mean' }, call)
        : Promise.resolve([]),
    ]);
    const meanByLayer = new Map(meanable.map((l, i) => [l, mean[0]?.mean?.[i]]));
    return { ...last!, mean: layers.map((l) => meanByLayer.get(l)) };
  }

  /**
   * `encodeBothPoolings` of each of several texts that are prefixes of one another (a prompt and the
   * first k steps of a response, k = 0, 1, …), from one decode of the longest: attention is causal, so
   * the rows at the end of a prefix are the rows of the prefix alone. A text whose tokens are not a
   * token prefix of the longest one's (the tokenizer merged across its end), that would be truncated or
   * that is shorter than `sharedPrefixMinTokens` is encoded on its own, so every result is what
   * `encodeBothPoolings` gives for its text (bit for bit on CPU; see `sharedPrefixMinTokens`).
   */
  async encodePrefixes(
    texts: readonly string[],
    layers: number[],
    call: EncodeCall = {},
  ): Promise<(EncodedBothPoolings & { shared: boolean })[]> {
    this.assertLive();
    this.assertLayers(layers, 'last');
    call.signal?.throwIfAborted();
    if (texts.length === 0) return [];
    this.refuseIfBacklogged(1);
    const prepared = texts.map((text, index) => this.prepare(text, index));
    const longest = prepared.reduce((a, b) => (b.tokens.length > a.tokens.length ? b : a));
    const isShared = prepared.map(
      (p) =>
        !longest.truncated &&
        !p.truncated &&
        p.tokens.length >= this.options.sharedPrefixMinTokens &&
        sharedPrefixLength(p.tokens, longest.tokens) === p.tokens.length,
    );
    const ends = Int32Array.from(
      new Set(prepared.filter((_, i) => isShared[i]).map((p) => p.tokens.length - 1)),
    ).sort();
    this.refuseIfLate(1, longest.tokens.length, call.deadlineMs);
    const sharedPass = new Promise<EncodedPrompt[]>((resolve, reject) => {
      if (ends.length === 0) return resolve([]);
      this.enqueue({
        tokens: longest.tokens,
        truncated: false,
        layers,
        pooling: 'both',
        ends,
        enqueuedAt: performance.now(),
        resolve,
        reject,
        ...(call.signal ? { signal: call.signal } : {}),
      });
    });
    const alone = texts.map((text, i) =>
      isShared[i] ? undefined : this.encodeBothPoolings(text, layers, call),
    );
    this.drain();
    const [byEnd, ...own] = await Promise.all([sharedPass, ...alone]);
    const endIndex = new Map(Array.from(ends, (end, i) => [end, i]));
    return prepared.map((p, i) => {
      if (!isShared[i]) return { ...own[i]!, shared: false };
      const at = byEnd[endIndex.get(p.tokens.length - 1)!]!;
      const mean = layers.map((l, j) => (l < this.info.layers - 1 ? at.mean![j] : undefined));
      return { ...at, tokens: p.tokens.length, mean, shared: true };
    });
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Decodes stopped part-way because every prompt in them had been given up (client gone, deadline). */
  get cancelledDecodes(): number {
    return this.cancelled;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const item of this.queue.splice(0)) item.reject(new EncoderDisposedError());
    // A decode still running is stopped, not finished for callers that are being turned away.
    if (this.running.length > 0) this.context.cancel();
    await this.idle;
    this.context.dispose();
    this.model.dispose();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  private assertLive(): void {
    if (this.disposed) throw new EncoderDisposedError();
  }

  private assertLayers(layers: number[], pooling: Pooling): void {
    const bad = layers.find((l) => l > this.info.layers);
    if (bad !== undefined) {
      throw new InvalidEncodeRequestError(
        `layer ${bad} does not exist: the encoder has blocks 0..${this.info.layers - 1}, and ${this.info.layers} is the final norm`,
      );
    }
    if (new Set(layers).size !== layers.length) throw new InvalidEncodeRequestError('layers must not repeat');
    const lastOnly = layers.filter((l) => l >= this.info.layers - 1);
    if (pooling !== 'last' && lastOnly.length > 0) {
      throw new InvalidEncodeRequestError(
        `mean pooling is not available for layer ${lastOnly.join(', ')}: llama.cpp computes the last block ` +
          'and the final norm for the last token only; use pooling "last" there',
      );
    }
  }

  private prepare(prompt: string | Uint8Array, index: number): { tokens: Int32Array; truncated: boolean } {
    let text: string;
    if (typeof prompt === 'string') {
      text = prompt.toWellFormed();
    } else {
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(prompt);
      } catch {
        throw new InvalidEncodeRequestError(`prompt ${index} is not valid UTF-8`);
      }
    }
    const { tokens, truncated } = promptWindow(text, (t, special) => this.model.tokenize(t, special), {
      maxTokens: this.maxPromptTokens,
      overflow: this.options.overflow,
      headTokens: this.options.headTokens,
      addsBos: this.addsBos,
    });
    if (tokens.length === 0) throw new InvalidEncodeRequestError(`prompt ${index} has no tokens`);
    return { tokens, truncated };
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    this.idle = new Promise((resolve) => {
      this.markIdle = resolve;
    });
    // Started on a microtask, not inline: calls made back to back in one tick (Promise.all over several
    // encode calls) then land in the same decode instead of the first one running alone.
    queueMicrotask(() => void this.drainLoop());
  }

  private async drainLoop(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.takeBatch();
        this.running = batch;
        try {
          await this.runBatch(batch);
        } finally {
          this.running = [];
        }
      }
    } finally {
      this.draining = false;
      this.markIdle();
    }
  }

  /**
   * The next decode's items in queue order: up to `maxBatchPrompts` distinct prompts within the token
   * budget, plus every waiting duplicate of a prompt already taken (they cost nothing extra).
   */
  private takeBatch(): QueueItem[] {
    const batch: QueueItem[] = [];
    const distinct = new Set<string>();
    let tokens = 0;
    for (let i = 0; i < this.queue.length; ) {
      const next = this.queue[i]!;
      if (next.ends !== undefined) {
        // An item with read-out positions has its own output layout: it decodes alone.
        if (batch.length === 0) {
          batch.push(next);
          this.queue.splice(i, 1);
          break;
        }
        i += 1;
        continue;
      }
      const key = tokenKey(next.tokens);
      const fits =
        distinct.has(key) ||
        (distinct.size < this.options.maxBatchPrompts &&
          (distinct.size === 0 || tokens + next.tokens.length <= this.options.batchTokens));
      if (!fits) {
        i += 1;
        continue;
      }
      if (!distinct.has(key)) {
        distinct.add(key);
        tokens += next.tokens.length;
      }
      batch.push(next);
      this.queue.splice(i, 1);
    }
    return batch;
  }

  /**
   * One decode for the whole batch, over the union of what its prompts asked for. Identical prompts in
   * flight (retries, several callers, a last-pooling and a mean-pooling request for one prompt) are
   * decoded once.
   */
  private async runBatch(batch: QueueItem[]): Promise<void> {
    const layers = [...new Set(batch.flatMap((item) => item.layers))].sort((a, b) => a - b);
    const wantMean = batch.some((item) => item.pooling !== 'last');
    const wantLast = batch.some((item) => item.pooling !== 'mean');
    const sequenceOf = new Map<string, number>();
    const sequences: Int32Array[] = [];
    const itemSequence = batch.map((item) => {
      const key = tokenKey(item.tokens);
      let index = sequenceOf.get(key);
      if (index === undefined) {
        index = sequences.push(item.tokens) - 1;
        sequenceOf.set(key, index);
      }
      return index;
    });
    const ends = batch[0]?.ends;
    let result: AddonCaptureResult;
    try {
      result = await this.context.capture(sequences, Int32Array.from(layers), {
        mean: wantMean,
        last: wantLast,
        stopEarly: true,
        ...(ends ? { ends: [ends] } : {}),
      });
    } catch (error) {
      if (this.disposed || batch.every((item) => item.signal?.aborted)) this.cancelled += 1;
      for (const item of batch) {
        item.reject(
          item.signal?.aborted ? item.signal.reason : this.disposed ? new EncoderDisposedError() : error,
        );
      }
      return;
    }
    const finishedAt = performance.now();
    this.decodeCost.observe(tokenCount(sequences.map((tokens) => ({ tokens }))), result.decodeMs);
    const width = this.info.embeddingWidth;
    const slice = (data: Float32Array, output: number, layer: number) => {
      const offset = (output * layers.length + layers.indexOf(layer)) * width;
      return data.slice(offset, offset + width);
    };
    batch.forEach((item, i) => {
      // Outputs: one per sequence, or (an item alone) one per read-out position.
      const outputs = item.ends ? Array.from(item.ends, (_, o) => o) : [itemSequence[i]!];
      item.resolve(
        outputs.map((output) => ({
          tokens: item.tokens.length,
          truncated: item.truncated,
          layers: item.layers,
          last: item.pooling !== 'mean' ? item.layers.map((l) => slice(result.last!, output, l)) : undefined,
          mean: item.pooling !== 'last' ? item.layers.map((l) => slice(result.mean!, output, l)) : undefined,
          queuedMs: finishedAt - item.enqueuedAt - result.decodeMs,
          decodeMs: result.decodeMs,
          batchSize: sequences.length,
        })),
      );
    });
  }
}

function tokenCount(items: readonly { tokens: Int32Array }[]): number {
  let n = 0;
  for (const item of items) n += item.tokens.length;
  return n;
}

/** Identity of a tokenized prompt, for spotting the same prompt twice in flight. */
function tokenKey(tokens: Int32Array): string {
  return Buffer.from(tokens.buffer, tokens.byteOffset, tokens.byteLength).toString('base64');
}
