import type { LocalLlamaModel } from '../src/tiers/providers/local-llama/local-llama-model.js';
import type { TierModel } from '../src/tiers/tier-model.js';
import {
  createUpstreamModel,
  type OpenAIUpstream,
  startOpenAIUpstream,
} from '../test/support/openai-upstream.js';
import { createScriptedModel, type ScriptSettings } from '../test/support/scripted-model.js';

/**
 * The loopback upstreams the reliability harness points the router's remote tiers at: real
 * OpenAI-compatible HTTP servers (test/support/openai-upstream.ts, with its fault switches) answering
 * either with the real local model or with a scripted model that writes a fixed answer at once. The
 * scripted one is what load and fault runs use by default: they measure the router, and a 270M model
 * generating on the same 2 cores would measure the model instead.
 */
export type UpstreamKind = 'scripted' | 'local';

export interface HarnessUpstreams {
  kind: UpstreamKind;
  /** Two deployments of the cheaper remote tier and one of the dearer. */
  mixtralA: OpenAIUpstream;
  mixtralB: OpenAIUpstream;
  gpt4: OpenAIUpstream;
  /** The scripted model's settings (ignored with the local model). */
  script: ScriptSettings;
  /** Every standing fault off. */
  heal(): void;
  close(): Promise<void>;
}

export const UPSTREAM_KEYS = {
  MIXTRAL_KEY: 'sk-reliability-mixtral-0000000000',
  GPT4_KEY: 'sk-reliability-gpt4-11111111111111',
};

export async function startHarnessUpstreams(kind: UpstreamKind): Promise<HarnessUpstreams> {
  const script: ScriptSettings = { deltas: 6, deltaDelayMs: 0 };
  const local: LocalLlamaModel | undefined = kind === 'local' ? await createUpstreamModel(4) : undefined;
  const model: TierModel = local ?? createScriptedModel(script);
  const mixtralA = await startOpenAIUpstream({ model, apiKey: UPSTREAM_KEYS.MIXTRAL_KEY });
  const mixtralB = await startOpenAIUpstream({ model, apiKey: UPSTREAM_KEYS.MIXTRAL_KEY });
  const gpt4 = await startOpenAIUpstream({ model, apiKey: UPSTREAM_KEYS.GPT4_KEY });
  const all = [mixtralA, mixtralB, gpt4];
  return {
    kind,
    mixtralA,
    mixtralB,
    gpt4,
    script,
    heal: () => {
      for (const upstream of all) upstream.setFault(undefined);
    },
    async close() {
      for (const upstream of all) await upstream.close();
      await local?.dispose();
    },
  };
}
