import { createHash } from 'node:crypto';
import type { Encoder } from '../../src/encoder/encoder.js';
import type { EncodeCall, EncodedPrompt, EncodeOptions } from '../../src/encoder/encoder-host.js';

/**
 * A stand-in encoder for HTTP tests of routes that are not about activations (auth, limits, error
 * shapes): deterministic vectors derived from each prompt's sha256, so a decision is reproducible, and
 * the same call contract as EncoderHost (abort signal honoured). The real model runs in the
 * integration and e2e tests.
 */
export function createFakeEncoder(
  options: { width?: number; layers?: number; delayMs?: number } = {},
): Encoder & {
  calls: number;
} {
  const width = options.width ?? 640;
  const layerCount = options.layers ?? 18;
  let pending = 0;
  const vector = (prompt: string | Uint8Array, layer: number) => {
    const seed = createHash('sha256').update(prompt).update(String(layer)).digest();
    return Float32Array.from({ length: width }, (_, i) => (seed[i % seed.length]! - 128) / 128);
  };
  const encoder = {
    calls: 0,
    info: { variant: 'fake', layers: layerCount, embeddingWidth: width, maxPromptTokens: 2048 },
    get pending() {
      return pending;
    },
    async encode(prompts: readonly (string | Uint8Array)[], opts: EncodeOptions, call: EncodeCall = {}) {
      encoder.calls += 1;
      call.signal?.throwIfAborted();
      pending += prompts.length;
      try {
        if (options.delayMs) {
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(resolve, options.delayMs);
            call.signal?.addEventListener('abort', () => {
              clearTimeout(timer);
              reject(call.signal!.reason);
            });
          });
        }
      } finally {
        pending -= prompts.length;
      }
      return prompts.map(
        (prompt): EncodedPrompt => ({
          tokens: Math.max(1, Math.ceil(String(prompt).length / 4)),
          truncated: false,
          layers: opts.layers,
          ...(opts.pooling !== 'mean' ? { last: opts.layers.map((l) => vector(prompt, l)) } : {}),
          ...(opts.pooling !== 'last' ? { mean: opts.layers.map((l) => vector(prompt, -l - 1)) } : {}),
          queuedMs: 0,
          decodeMs: 0,
          batchSize: 1,
        }),
      );
    },
    tokenize: (text: string) => Int32Array.from({ length: Math.max(1, Math.ceil(text.length / 4)) }, () => 1),
    dispose: async () => {},
  };
  return encoder;
}
