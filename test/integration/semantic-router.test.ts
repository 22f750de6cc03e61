import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { BaselineModel } from '../../src/baselines/baseline-model.js';
import { fitTfidf } from '../../src/baselines/tfidf.js';
import { baselineScorer, probeScorer } from '../../src/baselines/tier-scorer.js';
import { DEFAULT_PROBES_PATH } from '../../src/config/config-loader.js';
import { createPolicyStore } from '../../src/config/policy-file.js';
import type { EncoderHost } from '../../src/encoder/encoder-host.js';
import { DEFAULT_ENCODER_MODEL } from '../../src/models/manifest.js';
import { createManifestRegistry } from '../../src/models/manifest-registry.js';
import { PolicySchema, type RouteTier } from '../../src/policy/policy-schema.js';
import { loadProbeBundle, type ProbeBundle } from '../../src/probes/probe-bundle.js';
import { createRequestRouter } from '../../src/router/request-router.js';
import { sharedEncoder } from '../support/default-encoder.js';

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
    bundle = await loadProbeBundle(DEFAULT_PROBES_PATH, { encoderSha256: manifest.sha256 });
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
});
