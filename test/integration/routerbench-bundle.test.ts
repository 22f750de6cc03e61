import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig, resolveSecrets, routeTiers } from '../../src/config/config-loader.js';
import { createPolicyStore } from '../../src/config/policy-file.js';
import type { EncoderHost } from '../../src/encoder/encoder-host.js';
import { DEFAULT_ENCODER_MODEL } from '../../src/models/manifest.js';
import { createManifestRegistry } from '../../src/models/manifest-registry.js';
import { packageRoot } from '../../src/paths.js';
import { loadProbeBundle, type ProbeBundle } from '../../src/probes/probe-bundle.js';
import { createRequestRouter } from '../../src/router/request-router.js';
import { createEncoder } from '../support/default-encoder.js';

/**
 * The shipped RouterBench ladder (`config/routerbench.yaml` and `probes/routerbench.json`): the config
 * loads, its bundle has a calibrated head, a mean cost and the clusters `tiers anchors` and `tiers add`
 * read for every tier, and the real encoder routes a prompt through it over the 128-token window.
 */
const CONFIG = join(packageRoot, 'config', 'routerbench.yaml');
const TIERS = [
  'mistral-7b-chat',
  'mixtral-8x7b-chat',
  'code-llama-instruct-34b-chat',
  'llama-2-70b-chat',
  'gpt-3.5-turbo-1106',
  'claude-v1',
  'claude-v2',
  'gpt-4-1106-preview',
];

describe('the shipped RouterBench ladder', () => {
  let encoder: EncoderHost;
  let bundle: ProbeBundle;
  let config: Awaited<ReturnType<typeof loadConfig>>;
  before(async () => {
    config = await loadConfig(CONFIG);
    // The encoder as `serve` builds it from this config: the window is what the bundle was trained on.
    encoder = await createEncoder({
      contextTokens: config.encoder.context_tokens,
      maxQueueWaitMs: 600_000,
      ...(config.encoder.max_prompt_tokens === undefined
        ? {}
        : { maxPromptTokens: config.encoder.max_prompt_tokens }),
    });
    bundle = await loadProbeBundle(config.probes.path, {
      ...createManifestRegistry().get(DEFAULT_ENCODER_MODEL),
      maxPromptTokens: encoder.info.maxPromptTokens,
    });
  });
  after(async () => {
    await encoder?.dispose();
  });

  it('has a head, a mean cost per call and the 16 clusters of its training pool for every tier', () => {
    assert.equal(config.probes.path, join(packageRoot, 'probes', 'routerbench.json'));
    assert.deepEqual(
      config.tiers.map((t) => t.id),
      TIERS,
    );
    assert.deepEqual(
      bundle.tiers.map((t) => t.id),
      TIERS,
    );
    for (const tier of bundle.tiers) {
      assert.equal(tier.kind, 'linear', tier.id);
      assert.ok(tier.mean_cost_usd !== undefined && tier.mean_cost_usd > 0, tier.id);
    }
    const clusters = bundle.clusters;
    assert.ok(clusters, 'the bundle carries its clusters, so `tiers anchors` works on it as shipped');
    assert.equal(clusters.centroids.length, 16);
    assert.equal(clusters.pool_rows, 1780);
    for (const c of clusters.centroids) assert.equal(c.length, bundle.standardizer.mean.length);
    assert.equal(bundle.features.max_prompt_tokens, 128);
  });

  it('routes a prompt with every tier available: a P(success) per tier, read from the prompt window', async () => {
    const env = Object.fromEntries(
      config.tiers.flatMap((t) =>
        (t.provider === 'openai' ? t.deployments : []).flatMap((d) => [
          ...(d.api_key_env ? [[d.api_key_env, 'sk-test']] : []),
          ...(d.base_url_env ? [[d.base_url_env, 'http://127.0.0.1:9/v1']] : []),
        ]),
      ),
    );
    const tiers = routeTiers(config, resolveSecrets(config, env));
    assert.ok(tiers.every((t) => t.available));
    const router = createRequestRouter({
      encoder,
      bundle: () => bundle,
      policies: createPolicyStore(config.policy),
      tiers: () => tiers,
    });
    const question =
      'Which of these is a renewable source of energy? (A) coal (B) natural gas (C) wind (D) oil. Answer:';
    const routed = await router.decide({ prompt: question });
    assert.ok(TIERS.includes(routed.decision.tier), routed.decision.tier);
    assert.deepEqual(Object.keys(routed.prediction.tiers).sort(), [...TIERS].sort());
    for (const [id, p] of Object.entries(routed.prediction.tiers)) assert.ok(p > 0 && p < 1, `${id}: ${p}`);
    assert.equal(routed.truncated, false);
    // A prompt longer than the window is read as BOS + its last 127 tokens, and says so.
    const long = await router.decide({ prompt: `${'Some context. '.repeat(80)}${question}` });
    assert.equal(long.truncated, true);
    assert.ok(long.inputTokens > 128);
  });
});
