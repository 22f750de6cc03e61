import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { RouterServices } from '../../../src/server/services.js';
import { type ScriptedUpstream, startScriptedUpstream } from '../../support/scripted-upstream.js';
import { remoteTierConfig } from '../../support/server-config.js';
import { buildTestApp } from '../../support/test-app.js';

/** Decisions by outcome (refused ones included), tokens and time to first token in /metrics and /v1/stats. */
describe('request metrics', () => {
  let dir: string;
  let app: FastifyInstance;
  let services: RouterServices;
  let upstream: ScriptedUpstream;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mechroute-metrics-'));
    upstream = await startScriptedUpstream({ text: 'four' });
    ({ app, services } = await buildTestApp(dir, {
      tiers: [
        remoteTierConfig('mixtral-8x7b-instruct', [{ base_url: upstream.url }]),
        remoteTierConfig('gpt-4-1106-preview', [{ base_url: upstream.url, api_key_env: 'UNSET_KEY' }]),
      ],
    }));
  });
  after(async () => {
    await app?.close();
    await services?.close();
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const chat = (payload: Record<string, unknown>) =>
    app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      payload: { messages: [{ role: 'user', content: 'What is 2 + 2?' }], max_tokens: 4, ...payload },
    });
  const metric = (text: string, name: string, labels: string) =>
    Number(
      text
        .split('\n')
        .find((l) => l.startsWith(`${name}{`) && labels.split(',').every((p) => l.includes(p)))
        ?.split(' ')
        .pop() ?? Number.NaN,
    );

  it('counts routed and refused decisions, tokens, and time to first token', async () => {
    assert.equal((await chat({ model: 'mechroute', mechroute: { threshold: 0 } })).statusCode, 200);
    const streamed = await chat({ model: 'mechroute', stream: true, mechroute: { threshold: 0 } });
    assert.equal(streamed.statusCode, 200);
    const refused = await chat({ model: 'mechroute', mechroute: { threshold: 1 } });
    assert.equal(refused.statusCode, 503, refused.body);
    assert.equal(refused.json().error.code, 'MR_ERR_TIER_UNAVAILABLE');
    assert.equal(refused.headers['x-should-retry'], 'false', 'a configuration problem is not retried');
    const metrics = (await app.inject({ url: '/metrics' })).body;
    assert.equal(metric(metrics, 'mechroute_decisions_total', 'outcome="routed"'), 2);
    assert.equal(metric(metrics, 'mechroute_decisions_total', 'outcome="MR_ERR_TIER_UNAVAILABLE"'), 1);
    assert.equal(metric(metrics, 'mechroute_tokens_total', 'tier="mixtral-8x7b-instruct",kind="input"'), 20);
    assert.equal(metric(metrics, 'mechroute_tokens_total', 'tier="mixtral-8x7b-instruct",kind="output"'), 4);
    assert.equal(
      metric(metrics, 'mechroute_time_to_first_token_seconds_count', 'tier="mixtral-8x7b-instruct"'),
      1,
      'only the streamed answer has a first token to time',
    );
    const stats = (await app.inject({ url: '/v1/stats' })).json();
    assert.deepEqual(stats.decisions, { routed: 2, MR_ERR_TIER_UNAVAILABLE: 1 });
  });
});
