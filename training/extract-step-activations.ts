import { join } from 'node:path';
import { ActivationStore } from '../src/activations/activation-store.js';
import { encodePrefixChain, type StoreShape } from '../src/activations/encode-steps.js';
import { EncoderHost, EncoderHostOptionsSchema } from '../src/encoder/encoder-host.js';
import { FileUnreadableError, InvalidProbeInputError } from '../src/errors.js';
import { DEFAULT_ENCODER_MODEL } from '../src/models/manifest.js';
import { resolveCachedModel } from '../src/models/manifest-registry.js';
import { mechrouteHome } from '../src/paths.js';

/**
 * Activations of step-prefix texts (prompt + first k steps) in an activation store of their own.
 *
 * Unlike `mechroute extract`, which keeps every layer of every prompt, a step store keeps layers
 * 0 … `deepestLayer` only and the encoder stops right after that layer (early exit): step prefixes are
 * ~10× as many texts as prompts and several times as long, so the blocks past the probe layer would
 * be most of the cost. And the prefixes of one response are read out of one decode of the longest
 * (`EncoderHost.encodePrefixes`: attention is causal), so a response costs about one encode, not one
 * per step. Resumable like `extract`: texts already in the store are skipped, and a kill loses at most
 * the unflushed batch.
 */
export interface StepExtractOptions {
  /**
   * Texts to encode, keyed by their prompt hash, as chains of prefixes of one another (one response's
   * k = 0, 1, … prefixes), in the order wanted; a text in several chains or already stored is encoded once.
   */
  chains: readonly (readonly { hash: string; text: string }[])[];
  storeDir: string;
  /** Deepest layer kept (block index; the encoder's block count = its final norm). */
  deepestLayer: number;
  model?: string;
  /** An already loaded host of the same model (tests share one); otherwise one is created and disposed. */
  encoder?: EncoderHost;
  signal?: AbortSignal;
  /** Counts texts, not chains. */
  onProgress?: (done: number, total: number, elapsedMs: number, tokens: number) => void;
}

export interface StepExtractSummary {
  store: string;
  texts: number;
  cached: number;
  encoded: number;
  failed: { hash: string; reason: string }[];
  tokens: number;
  truncated: number;
  seconds: number;
  texts_per_second: number;
  tokens_per_second: number;
  interrupted: boolean;
}

/** `train --steps --extract` keeps layers 0..9 unless told otherwise (`--deepest-layer`). */
export const DEFAULT_STEP_DEEPEST_LAYER = 9;

/** Default step store: beside the prompt stores, one per encoder and deepest layer. */
export function defaultStepStore(encoderSha256: string, deepestLayer: number): string {
  return join(mechrouteHome(), 'step-activations', `${encoderSha256}-L${deepestLayer}`);
}

/** What a step store holds (its deepest layer and its texts' hashes), or undefined when there is none yet. */
export async function inspectStepStore(
  storeDir: string,
  encoder: { name: string; sha256: string },
): Promise<{ deepestLayer: number; hashes: Set<string> } | undefined> {
  let store: ActivationStore;
  try {
    store = await ActivationStore.open({ encoder, dir: storeDir, readOnly: true });
  } catch (error) {
    const cause = error instanceof FileUnreadableError ? (error.cause as { code?: string }) : undefined;
    if (cause?.code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return { deepestLayer: store.meta.layers - 1, hashes: new Set(store.hashes()) };
  } finally {
    await store.close();
  }
}

/** The store shape that holds layers 0 … deepest: last-token everywhere, mean where the encoder has it. */
export function stepStoreShape(deepestLayer: number, blocks: number): StoreShape {
  return { layers: deepestLayer + 1, meanLayers: Math.min(deepestLayer + 1, blocks - 1) };
}

export async function openStepStore(
  storeDir: string,
  deepestLayer: number,
  options: { model?: string; readOnly?: boolean } = {},
): Promise<{ store: ActivationStore; shape: StoreShape; maxPromptTokens: number }> {
  const { manifest, path } = resolveCachedModel(options.model ?? DEFAULT_ENCODER_MODEL);
  if (!(deepestLayer >= 0 && deepestLayer <= manifest.layers)) {
    throw new InvalidProbeInputError(
      `layer ${deepestLayer} does not exist: the encoder has layers 0..${manifest.layers}`,
    );
  }
  const defaults = EncoderHostOptionsSchema.parse({ modelPath: path });
  const maxPromptTokens = Math.min(defaults.maxPromptTokens ?? Infinity, defaults.contextTokens);
  const shape = stepStoreShape(deepestLayer, manifest.layers);
  const store = await ActivationStore.open({
    encoder: { name: manifest.name, sha256: manifest.sha256 },
    ...shape,
    width: manifest.embedding_width,
    maxPromptTokens,
    dir: storeDir,
    readOnly: options.readOnly ?? false,
  });
  return { store, shape, maxPromptTokens };
}

export async function extractStepActivations(options: StepExtractOptions): Promise<StepExtractSummary> {
  const started = performance.now();
  const { store, shape } = await openStepStore(options.storeDir, options.deepestLayer, {
    ...(options.model ? { model: options.model } : {}),
  });
  // Each chain keeps the texts not stored and not in an earlier chain; the rest are not asked again
  // (a chain's shared decode costs the same whichever of its prefixes it reads out).
  const seen = new Set<string>();
  let texts = 0;
  const todo: { hash: string; text: string }[][] = [];
  for (const chain of options.chains) {
    const fresh = chain.filter(({ hash }) => !seen.has(hash) && !store.has(hash));
    for (const { hash } of chain) {
      if (!seen.has(hash)) texts += 1;
      seen.add(hash);
    }
    if (fresh.length > 0) todo.push(fresh);
  }
  const todoTexts = todo.reduce((n, chain) => n + chain.length, 0);
  const summary: StepExtractSummary = {
    store: store.dir,
    texts,
    cached: texts - todoTexts,
    encoded: 0,
    failed: [],
    tokens: 0,
    truncated: 0,
    seconds: 0,
    texts_per_second: 0,
    tokens_per_second: 0,
    interrupted: false,
  };
  try {
    if (todo.length > 0 && !options.signal?.aborted) {
      const { path } = resolveCachedModel(options.model ?? DEFAULT_ENCODER_MODEL);
      const encoder = options.encoder ?? (await EncoderHost.create({ modelPath: path }));
      const encodeStarted = performance.now();
      try {
        options.onProgress?.(0, todoTexts, 0, 0);
        let done = 0;
        for (const chain of todo) {
          if (options.signal?.aborted) break;
          // One chain per decode (and a short prefix alone): on CPU batching gains nothing and would
          // make activations depend on what shares the batch (see EncoderHostOptions.maxBatchPrompts).
          const outcomes = await encodePrefixChain(
            encoder,
            chain.map(({ text }) => text),
            shape,
          );
          for (const [i, outcome] of outcomes.entries()) {
            const { hash } = chain[i]!;
            if (outcome.ok) {
              await store.append(hash, outcome.record);
              summary.encoded += 1;
              summary.tokens += outcome.record.tokens;
              if (outcome.record.truncated) summary.truncated += 1;
            } else {
              const error = outcome.error;
              summary.failed.push({ hash, reason: error instanceof Error ? error.message : String(error) });
            }
          }
          done += chain.length;
          options.onProgress?.(done, todoTexts, performance.now() - encodeStarted, summary.tokens);
        }
      } finally {
        if (!options.encoder) await encoder.dispose();
      }
      const encodeSeconds = (performance.now() - encodeStarted) / 1000;
      summary.texts_per_second = summary.encoded / encodeSeconds;
      summary.tokens_per_second = summary.tokens / encodeSeconds;
    }
  } finally {
    await store.close();
  }
  summary.interrupted = summary.encoded + summary.failed.length < todoTexts;
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}
