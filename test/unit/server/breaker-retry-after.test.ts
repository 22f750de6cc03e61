import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { startOpenAIUpstream } from '../../support/openai-upstream.js';
import { createScriptedModel } from '../../support/scripted-model.js';
import { remoteTierConfig } from '../../support/server-config.js';
import { buildTestApp } from '../../support/test-app.js';

/**
 * A named tier whose every deployment is cooling down answers 503 — and, since the wait is known
 * (the breaker's cooldown), with a retry-after and `x-should-retry: true` (issue 16, #4: "the
 * breaker's 503 has no Retry-After"). Found by the reliability harness's fault runs: the decision for a
 * named tier that is unavailable carries no wait (src/router/mode-plans.ts `namedTierDecision`, and
 * `decisionError` in src/policy/route.ts), so the client is told never to retry.
 */
it('answers a named tier whose breakers are open with 503 and a retry-after', {}, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mechroute-breaker-'));
  const upstream = await startOpenAIUpstream({ model: createScriptedModel({ deltas: 2, deltaDelayMs: 0 }) });
  upstream.setFault({ kind: 'status', status: 500 });
  const { app, services } = await buildTestApp(dir, {
    tiers: [
      remoteTierConfig('mixtral-8x7b-instruct', [{ base_url: upstream.baseUrl }], {
        max_retries: 0,
        cooldown: { failures: 1, seconds: 30 },
      }),
    ],
  });
  try {
    const ask = () =>
      app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        payload: { model: 'mixtral-8x7b-instruct', messages: [{ role: 'user', content: 'hi' }] },
      });
    assert.equal((await ask()).statusCode, 502, 'the failure that opens the breaker');
    const cooling = await ask();
    assert.equal(cooling.statusCode, 503);
    assert.ok(Number(cooling.headers['retry-after']) >= 1, JSON.stringify(cooling.headers));
    assert.equal(cooling.headers['x-should-retry'], 'true');
  } finally {
    await app.close();
    await services.close();
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  }
});
