import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../../src/config/config-loader.js';
import { packageRoot } from '../../../src/paths.js';
import { PolicySchema } from '../../../src/policy/policy-schema.js';
import { remoteTierConfig, writeServerConfig } from '../../support/server-config.js';
import { buildTestApp } from '../../support/test-app.js';

/**
 * The probe gate reads the answer with the config's step-probe bundle. A config whose policy asks for it
 * without naming a bundle is refused at startup; a policy installed later (reload, rollback) is refused
 * per request, before any tier is called — never a gate that escalates every answer it cannot score.
 * The request test runs on the stand-in encoder: nothing here is about activations.
 */
const tiers = [
  remoteTierConfig('mixtral-8x7b-instruct', [{ base_url: 'http://127.0.0.1:9/v1' }]),
  remoteTierConfig('gpt-4-1106-preview', [{ base_url: 'http://127.0.0.1:9/v1' }]),
];
const cascade = (gate: Record<string, unknown>) => ({
  version: 'gate',
  kind: 'cascade',
  threshold: { default: 0 },
  cascade: { max_depth: 1, gate },
});

describe('a probe gate without the step bundle', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mechroute-probe-gate-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is refused at startup, inline or from a policy file, naming the field and the fix', async () => {
    const inline = await writeServerConfig(dir, {
      tiers,
      policy: cascade({ kind: 'probe', min_p_success: 0.5 }),
    });
    await assert.rejects(loadConfig(inline), (error: Error) => {
      assert.match(error.message, /policy\.cascade\.gate\.kind: "probe" reads prompt \+ answer/);
      assert.match(error.message, /steps\.probes/);
      return true;
    });
    await writeFile(join(dir, 'policy.json'), JSON.stringify(cascade({ kind: 'probe' })));
    const fromFile = await writeServerConfig(dir, { tiers, policy_file: 'policy.json' });
    await assert.rejects(loadConfig(fromFile), /policy_file \(.*policy\.json\): cascade\.gate\.kind/);
  });

  it('is accepted with a steps section, and a logprob gate needs none', async () => {
    const withSteps = await writeServerConfig(dir, {
      tiers,
      policy: cascade({ kind: 'probe' }),
      steps: { probes: join(packageRoot, 'probes', 'default-steps.json') },
    });
    assert.equal((await loadConfig(withSteps)).policy.cascade.gate.kind, 'probe');
    const logprob = await writeServerConfig(dir, { tiers, policy: cascade({ kind: 'logprob' }) });
    assert.equal((await loadConfig(logprob)).policy.cascade.gate.kind, 'logprob');
  });

  it('installed after startup, is refused per request with 503 MR_ERR_NO_STEP_PROBE before any tier runs', async () => {
    const { app, services } = await buildTestApp(dir, {
      tiers,
      extra: { policy: cascade({ kind: 'logprob' }) },
    });
    try {
      const change = services.policies.set(
        PolicySchema.parse({ ...cascade({ kind: 'probe', min_p_success: 0.5 }), version: 'gate-2' }),
      );
      assert.equal(services.policies.current().version, 'gate-2', JSON.stringify(change));
      const response = await app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        payload: { model: 'mechroute', messages: [{ role: 'user', content: 'What is 2 + 2?' }] },
      });
      assert.equal(response.statusCode, 503, response.body);
      const body = response.json();
      assert.equal(body.error.code, 'MR_ERR_NO_STEP_PROBE');
      assert.match(body.error.message, /steps\.probes/);
      assert.equal(response.headers['x-should-retry'], 'false');
    } finally {
      await app.close();
      await services.close();
    }
  });
});
