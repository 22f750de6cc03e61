import type { EncodedBothPoolings, EncoderHost } from '../encoder/encoder-host.js';
import type { ActivationRecord } from './store-format.js';

/** What a store record holds for an encoder: see store-format.ts. */
export interface StoreShape {
  /** Last-token vectors: every block, plus the final norm's output (index n). */
  layers: number;
  /** Mean-pooled vectors: the blocks before the last one (the host has no mean pooling after them). */
  meanLayers: number;
}

/** The shape for an encoder of `blocks` transformer blocks. */
export function storeShape(blocks: number): StoreShape {
  return { layers: blocks + 1, meanLayers: blocks - 1 };
}

export interface StepLimits {
  /** Prompts per step at most. */
  prompts: number;
  /** Tokens per step at most (a longer prompt makes a step alone). */
  tokens: number;
}

/**
 * The host options that make each step exactly one decode: the host counts distinct prompts (a prompt's
 * two requests, see `encodeStep`, share one sequence).
 */
export function hostLimitsFor(limits: StepLimits, maxPromptTokens: number) {
  return {
    maxBatchPrompts: Math.min(256, limits.prompts),
    batchTokens: Math.max(limits.tokens, maxPromptTokens),
  };
}

/**
 * Cuts the next step off `items` from `start`: consecutive prompts up to the prompt and token limits,
 * at least one. Returns the end index (exclusive).
 */
export function nextStep(
  start: number,
  count: number,
  tokensOf: (index: number) => number,
  limits: StepLimits,
): number {
  let end = start;
  let tokens = 0;
  while (end < count && end - start < limits.prompts) {
    const next = tokensOf(end);
    if (end > start && tokens + next > limits.tokens) break;
    tokens += next;
    end += 1;
  }
  return end;
}

/** `shared`: the record was read out of a longer text's decode (`encodePrefixChain`), not decoded alone. */
export type StepOutcome =
  | { ok: true; record: ActivationRecord; shared: boolean }
  | { ok: false; error: unknown };

/**
 * Encodes one step's prompts at every stored layer, as one decode.
 *
 * The host batches the requests made in one turn of the event loop into one decode, counting distinct
 * prompts: each prompt's two requests (last-token at every layer; mean where the host has it) share one
 * sequence, and the step's prompts — within the host limits set by `hostLimitsFor` — make up exactly one
 * decode, never split across decodes nor mixed with another step's. That makes what is stored
 * independent of timing, and with one prompt per step equal to what a lone request computes. The host
 * must be used by this caller alone meanwhile (other requests would join the decode).
 */
export async function encodeStep(
  encoder: EncoderHost,
  texts: readonly string[],
  shape: StoreShape,
): Promise<StepOutcome[]> {
  const layers = storedLayers(shape);
  const outcomes = texts.map(async (text): Promise<StepOutcome> => {
    try {
      const both = await encoder.encodeBothPoolings(text, layers);
      return { ok: true, record: storeRecord(both, shape, texts.length > 1), shared: false };
    } catch (error) {
      // One request per prompt, so a prompt the encoder refuses fails alone.
      return { ok: false, error };
    }
  });
  return Promise.all(outcomes);
}

/**
 * Encodes texts that are prefixes of one another (a prompt and the first k steps of one response) at
 * every stored layer, from one decode of the longest where that gives each prefix exactly its own
 * activations (see `EncoderHost.encodePrefixes`). A refusal fails the whole chain.
 */
export async function encodePrefixChain(
  encoder: EncoderHost,
  texts: readonly string[],
  shape: StoreShape,
): Promise<StepOutcome[]> {
  try {
    const encoded = await encoder.encodePrefixes(texts, storedLayers(shape));
    return encoded.map((both) => ({
      ok: true,
      record: storeRecord(both, shape, false),
      shared: both.shared,
    }));
  } catch (error) {
    return texts.map(() => ({ ok: false, error }));
  }
}

function storedLayers(shape: StoreShape): number[] {
  return Array.from({ length: shape.layers }, (_, i) => i);
}

function storeRecord(both: EncodedBothPoolings, shape: StoreShape, batched: boolean): ActivationRecord {
  return {
    tokens: both.tokens,
    truncated: both.truncated,
    batched,
    last: both.last!,
    // The host has means for the first `meanLayers` layers exactly (storeShape).
    mean: both.mean.slice(0, shape.meanLayers) as Float32Array[],
  };
}
