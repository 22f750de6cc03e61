import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { BaselineModel } from '../../src/baselines/baseline-model.js';
import { baselineScorer, hybridScorer, probeScorer } from '../../src/baselines/tier-scorer.js';
import { DEFAULT_PROBES_PATH } from '../../src/config/config-loader.js';
import { createPolicyStore } from '../../src/config/policy-file.js';
import type { EncoderHost } from '../../src/encoder/encoder-host.js';
import { DEFAULT_ENCODER_MODEL } from '../../src/models/manifest.js';
import { createManifestRegistry } from '../../src/models/manifest-registry.js';
import { PolicySchema, type RouteTier } from '../../src/policy/policy-schema.js';
import { loadProbeBundle, type ProbeBundle } from '../../src/probes/probe-bundle.js';
import { createRequestRouter } from '../../src/router/request-router.js';
import { fitTfidf } from '../../src/text/tfidf.js';
import { createEncoder, sharedEncoder } from '../support/default-encoder.js';

const TIERS: RouteTier[] = [
  { id: 'gemma-3-270m', price: { input_per_mtok: 0, output_per_mtok: 0 }, available: true },
  { id: 'mixtral-8x7b-instruct', price: { input_per_mtok: 0.24, output_per_mtok: 0.24 }, available: true },
  { id: 'gpt-4-1106-preview', price: { input_per_mtok: 10, output_per_mtok: 30 }, available: true },
];

/**
 * A TF-IDF router whose P(mixtral succeeds) is high for history prompts and low for calculus ones — a
 * hand-set real model, so the test knows what semantic mode must decide.
 */
function historyRouter(): BaselineModel {
  const tfidf = fitTfidf(['history of the roman empire', 'calculus integral of x'], {
    minDf: 1,
    charNgram: [50, 50],
  });
  const dim = tfidf.terms.length;
  const weightsFor = (word: string, sign: number) =>
    tfidf.terms.map((t) => (t === `w:${word}` ? sign * 20 : 0));
  const tier = (id: string, weights: number[], bias: number) => ({
    id,
    kind: 'linear' as const,
    weights,
    bias,
    lambda: 1,
    calibration: { kind: 'none' as const },
  });
  return {
    format: 'mechroute-baseline',
    version: 1,
    method: 'tfidf-lr',
    tiers: TIERS.map((t) => t.id),
    featurizer: { kind: 'tfidf', tfidf },
    head: {
      kind: 'linear',
      standardizer: { mean: new Array(dim).fill(0), std: new Array(dim).fill(1) },
      tiers: [
        tier('gemma-3-270m', new Array(dim).fill(0), -5),
        tier(
          'mixtral-8x7b-instruct',
          weightsFor('history', 1).map((w, j) => w + weightsFor('integral', -1)[j]!),
          0,
        ),
        tier('gpt-4-1106-preview', new Array(dim).fill(0), 5),
      ],
    },
  };
}

describe('the router in semantic mode (policy.signal: text-embedding)', () => {
  let encoder: EncoderHost;
  let bundle: ProbeBundle;
  before(async () => {
    encoder = await sharedEncoder();
    const manifest = createManifestRegistry().get(DEFAULT_ENCODER_MODEL);
    bundle = await loadProbeBundle(DEFAULT_PROBES_PATH, manifest);
  });

  const policy = (signal: 'probes' | 'text-embedding') =>
    PolicySchema.parse({ version: signal, kind: 'threshold', signal, threshold: { default: 0.5 } });

  it('routes on the text classifier’s probabilities, with token counts from the encoder’s tokenizer', async () => {
    const textScorer = baselineScorer(historyRouter(), {});
    const router = createRequestRouter({
      encoder,
      bundle: () => bundle,
      policies: createPolicyStore(policy('text-embedding')),
      tiers: () => TIERS,
      textScorer,
    });
    const history = await router.decide({ prompt: 'When did the roman empire fall? history question' });
    const calculus = await router.decide({ prompt: 'Compute the integral of x squared.' });
    assert.equal(history.signal, 'text-embedding');
    assert.equal(history.decision.tier, 'mixtral-8x7b-instruct');
    assert.equal(calculus.decision.tier, 'gpt-4-1106-preview');
    assert.deepEqual(
      history.prediction.tiers,
      (await textScorer.score('When did the roman empire fall? history question')).tiers,
    );
    // Difficulty: P(the bundle's difficulty tier fails).
    assert.ok(
      Math.abs(history.prediction.difficulty - (1 - history.prediction.tiers['mixtral-8x7b-instruct']!)) <
        1e-12,
    );
    assert.equal(
      history.inputTokens,
      encoder.tokenize('When did the roman empire fall? history question').length,
    );
  });

  it('keeps routing on the probes by default, and refuses semantic mode without a model', async () => {
    const probes = createRequestRouter({
      encoder,
      bundle: () => bundle,
      policies: createPolicyStore(policy('probes')),
      tiers: () => TIERS,
    });
    const routed = await probes.decide({ prompt: 'What is 2 + 2?' });
    assert.equal(routed.signal, 'probes');
    // The probes behind the shared TierScorer interface score exactly as the router does.
    const scored = await probeScorer(bundle, encoder).score('What is 2 + 2?');
    assert.deepEqual(scored.tiers, routed.prediction.tiers);
    assert.deepEqual(Object.keys(routed.prediction.tiers).sort(), TIERS.map((t) => t.id).sort());
    const missing = createRequestRouter({
      encoder,
      bundle: () => bundle,
      policies: createPolicyStore(policy('text-embedding')),
      tiers: () => TIERS,
    });
    await assert.rejects(missing.decide({ prompt: 'x' }), { code: 'MR_ERR_NO_TEXT_SCORER' });
  });

  it('routes on the bundle’s hybrid head with signal: hybrid, and refuses it without one', async () => {
    // A hand-made hybrid head: the probe stage knows nothing (zero weights); the stacker passes the text
    // stage's log-odds through, so the decision follows the words as the history router's does.
    const text = historyRouter();
    const head = text.head as Extract<BaselineModel['head'], { kind: 'linear' }>;
    const ids = TIERS.map((t) => t.id);
    const dim = bundle.standardizer.mean.length;
    const zero = (width: number) => ({
      kind: 'linear' as const,
      standardizer: { mean: new Array(width).fill(0), std: new Array(width).fill(1) },
      tiers: ids.map((id) => ({
        id,
        kind: 'linear' as const,
        weights: new Array(width).fill(0),
        bias: 0,
        lambda: 1,
        calibration: { kind: 'none' as const },
      })),
    });
    const stacker = zero(2 * ids.length);
    for (const [k, tier] of stacker.tiers.entries()) tier.weights[ids.length + k] = 1;
    const hybrid: ProbeBundle = {
      ...bundle,
      hybrid: {
        probes: zero(dim),
        tfidf: text.featurizer.kind === 'tfidf' ? text.featurizer.tfidf : assert.fail('tfidf'),
        text: head,
        stacker,
      },
    };
    const router = createRequestRouter({
      encoder,
      bundle: () => hybrid,
      policies: createPolicyStore(
        PolicySchema.parse({
          version: 'h',
          kind: 'threshold',
          signal: 'hybrid',
          threshold: { default: 0.5 },
        }),
      ),
      tiers: () => TIERS,
    });
    const prompt = 'When did the roman empire fall? history question';
    const routed = await router.decide({ prompt });
    assert.equal(routed.signal, 'hybrid');
    assert.equal(routed.decision.tier, 'mixtral-8x7b-instruct');
    assert.equal(
      (await router.decide({ prompt: 'Compute the integral of x squared.' })).decision.tier,
      'gpt-4-1106-preview',
    );
    const words = await baselineScorer(text, {}).score(prompt);
    for (const id of ids) {
      // logit clipped at 1e-4 either side, then the sigmoid: the text stage's P back, up to that clip.
      const p = Math.min(1 - 1e-4, Math.max(1e-4, words.tiers[id]!));
      assert.ok(Math.abs(routed.prediction.tiers[id]! - p) < 1e-9, id);
    }
    assert.deepEqual((await hybridScorer(hybrid, encoder).score(prompt)).tiers, routed.prediction.tiers);
    assert.equal(routed.inputTokens, encoder.tokenize(prompt).length);

    const without = createRequestRouter({
      encoder,
      bundle: () => bundle,
      policies: createPolicyStore(PolicySchema.parse({ version: 'h', kind: 'threshold', signal: 'hybrid' })),
      tiers: () => TIERS,
    });
    await assert.rejects(without.decide({ prompt: 'x' }), { code: 'MR_ERR_NO_HYBRID_HEAD' });
  });

  it('reads the bundle’s prompt window, prices the whole prompt, and refuses an encoder with another window', async () => {
    const windowed: ProbeBundle = { ...bundle, features: { ...bundle.features, max_prompt_tokens: 16 } };
    const prompt =
      'Please answer the following question about the history of the roman empire in one word. '.repeat(3);
    const small = await createEncoder({ maxPromptTokens: 16 });
    try {
      const router = createRequestRouter({
        encoder: small,
        bundle: () => windowed,
        policies: createPolicyStore(policy('probes')),
        tiers: () => TIERS,
      });
      const routed = await router.decide({ prompt });
      assert.equal(routed.truncated, true);
      assert.equal(routed.inputTokens, small.tokenize(prompt).length);
      assert.ok(routed.inputTokens > 16);
    } finally {
      await small.dispose();
    }
    const mismatched = createRequestRouter({
      encoder,
      bundle: () => windowed,
      policies: createPolicyStore(policy('probes')),
      tiers: () => TIERS,
    });
    await assert.rejects(mismatched.decide({ prompt }), /set encoder\.max_prompt_tokens to 16/);
  });
});
