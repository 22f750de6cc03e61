import type { EncoderHost } from '../encoder/encoder-host.js';
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
 * The host options that make each step exactly one decode: every prompt is two requests (see
 * `encodeStep`), which the host counts twice but decodes once.
 */
export function hostLimitsFor(limits: StepLimits, maxPromptTokens: number) {
  return {
    maxBatchPrompts: Math.min(256, 2 * limits.prompts),
    batchTokens: 2 * Math.max(limits.tokens, maxPromptTokens),
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

export type StepOutcome = { ok: true; record: ActivationRecord } | { ok: false; error: unknown };

/**
 * Encodes one step's prompts at every stored layer, as one decode.
 *
 * The host starts decoding the first request it gets when idle, alone; everything queued meanwhile forms
 * the next decode. So a tiny request (the bare BOS, layer 0, early exit) goes first, and the step's
 * requests, queued while it runs, make up exactly one decode: each prompt's two requests (last-token at
 * every layer; mean where the host has it) share one sequence, and no prompt is split across decodes or
 * decoded next to prompts of another step. That makes what is stored independent of timing, and with
 * one prompt per step equal to what a lone request computes. The host must be used by this caller alone
 * meanwhile (other requests would join the decode).
 */
export async function encodeStep(
  encoder: EncoderHost,
  texts: readonly string[],
  shape: StoreShape,
): Promise<StepOutcome[]> {
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const lastLayers = range(shape.layers);
  const meanLayers = range(shape.meanLayers);
  // The host leaves its drain loop a few microtasks after resolving the last decode; a macrotask turn
  // makes sure it has, or the barrier would join the step's decode instead of going alone.
  await new Promise((resolve) => setImmediate(resolve));
  const barrier = encoder.encode([''], { layers: [0], pooling: 'last' }).catch(() => undefined);
  const outcomes = texts.map(async (text): Promise<StepOutcome> => {
    try {
      const [[last], mean] = await Promise.all([
        encoder.encode([text], { layers: lastLayers, pooling: 'last' }),
        meanLayers.length > 0 ? encoder.encode([text], { layers: meanLayers, pooling: 'mean' }) : [],
      ]);
      const record = {
        tokens: last!.tokens,
        truncated: last!.truncated,
        batched: texts.length > 1,
        last: last!.last!,
        mean: mean[0]?.mean ?? [],
      };
      return { ok: true, record };
    } catch (error) {
      // One request per prompt, so a prompt the encoder refuses fails alone.
      return { ok: false, error };
    }
  });
  await barrier;
  return Promise.all(outcomes);
}
