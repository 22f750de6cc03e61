import { setTimeout as sleep } from 'node:timers/promises';
import type {
  CallOptions,
  GenerateResult,
  StreamPart,
  TierModel,
  TierRequest,
} from '../../src/tiers/tier-model.js';

/**
 * A TierModel that writes a fixed answer at once (or at a set pace), for the loopback upstreams of
 * tests and benchmarks about the router rather than the model: failover, shutdown, load. The real
 * local model serves the upstreams wherever what is answered matters.
 */
/** How the scripted model answers; changed while a run goes on (the drain phase wants slow streams). */
export interface ScriptSettings {
  /** Text deltas per answer. */
  deltas: number;
  /** Pause before each delta. */
  deltaDelayMs: number;
}

const WORDS = ['The', ' answer', ' is', ' C', '.', ' Carbon', ' dioxide', ' it', ' is', '.'];

/** A TierModel that answers every request with the same words, honouring cancellation. */
export function createScriptedModel(settings: ScriptSettings): TierModel {
  async function* parts(request: TierRequest, options: CallOptions = {}): AsyncIterable<StreamPart> {
    const count = Math.min(settings.deltas, request.max_tokens ?? settings.deltas);
    const delay = settings.deltaDelayMs;
    yield { type: 'start', tier: 'scripted', deployment: '0', warnings: [] };
    for (let i = 0; i < count; i++) {
      if (delay > 0) {
        try {
          await sleep(delay, undefined, options.signal ? { signal: options.signal } : {});
        } catch {
          return;
        }
      }
      if (options.signal?.aborted) return;
      yield { type: 'text-delta', text: WORDS[i % WORDS.length]! };
    }
    yield {
      type: 'finish',
      finish_reason: count < settings.deltas ? 'length' : 'stop',
      usage: { input_tokens: 12, output_tokens: count },
    };
  }
  return {
    specificationVersion: 'v1',
    id: 'scripted',
    provider: 'local',
    async generate(request, options): Promise<GenerateResult> {
      let text = '';
      let finish: GenerateResult['finish_reason'] = 'stop';
      let usage = { input_tokens: 0, output_tokens: 0 };
      for await (const part of parts(request, options)) {
        if (part.type === 'text-delta') text += part.text;
        if (part.type === 'finish') ({ finish_reason: finish, usage } = part);
      }
      options?.signal?.throwIfAborted();
      return { text, finish_reason: finish, usage, warnings: [], tier: 'scripted', deployment: '0' };
    },
    stream: parts,
  };
}
