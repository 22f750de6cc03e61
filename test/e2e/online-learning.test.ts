import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { DEFAULT_PROBES_PATH } from '../../src/config/config-loader.js';
import { type RunningServer, startServer } from '../../src/server/server.js';
import type { LocalLlamaModel } from '../../src/tiers/providers/local-llama/local-llama-model.js';
import { createUpstreamModel, type OpenAIUpstream, startOpenAIUpstream } from '../support/openai-upstream.js';
import { callServer } from '../support/server-call.js';
import { remoteTierConfig, writeServerConfig } from '../support/server-config.js';

/**
 * Online learning over HTTP with the real encoder and the shipped probes: outcomes posted to
 * /v1/feedback for routed requests move the next decision's P for the tier that answered; what was
 * learned survives a restart; a policy rollback restores what the version rolled back to had learned;
 * a reset returns to the probes' own P.
 */
const env = { UPSTREAM_KEY: 'sk-test-upstream-0000000000' };
const TIER = 'mixtral-8x7b-instruct';
const probe = 'What is the derivative of x squared?';

let dir: string;
let local: LocalLlamaModel;
let upstream: OpenAIUpstream;
const running: RunningServer[] = [];

const writeConfig = (policyVersion: string) =>
  writeServerConfig(dir, {
    server: { host: '127.0.0.1', port: 0 },
    encoder: { model: 'gemma-3-270m-q4_k_m', gpu: 'auto' },
    probes: { path: DEFAULT_PROBES_PATH },
    tiers: [
      remoteTierConfig(TIER, [{ base_url: upstream.baseUrl, api_key_env: 'UPSTREAM_KEY' }], {
        max_retries: 0,
      }),
      remoteTierConfig('gpt-4-1106-preview', [{ base_url: upstream.baseUrl, api_key_env: 'UPSTREAM_KEY' }], {
        max_retries: 0,
      }),
    ],
    policy: {
      version: policyVersion,
      kind: 'threshold',
      threshold: { default: 0 },
      output_tokens: { default: 8 },
    },
    learning: { online: true, learning_rate: 0.5, max_step: 1 },
  });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mechroute-learning-'));
  local = await createUpstreamModel();
  upstream = await startOpenAIUpstream({ model: local, apiKey: env.UPSTREAM_KEY });
  await writeConfig('1');
});

after(async () => {
  for (const server of running) await server.close();
  await upstream?.close();
  await local?.dispose();
  await rm(dir, { recursive: true, force: true });
});

async function start(): Promise<RunningServer> {
  const server = await startServer({
    configPath: join(dir, 'config.json'),
    port: 0,
    env,
    logLevel: 'silent',
  });
  running.push(server);
  return server;
}

const call = callServer;
const pOf = async (server: RunningServer): Promise<number> =>
  (await call(server, 'POST', '/v1/route', { prompt: probe })).body.p_success[TIER];

/** Answers `prompts` through the router and reports each outcome. */
async function teach(server: RunningServer, prompts: readonly string[], success: boolean) {
  for (const content of prompts) {
    const answered = await call(server, 'POST', '/v1/chat/completions', {
      model: 'mechroute',
      max_tokens: 4,
      messages: [{ role: 'user', content }],
    });
    assert.equal(answered.status, 200, JSON.stringify(answered.body));
    assert.equal(answered.body.mechroute.answered_by, TIER);
    const id = answered.body.mechroute.request_id;
    const rated = await call(server, 'POST', '/v1/feedback', { request_id: id, success });
    assert.deepEqual([rated.status, rated.body], [200, { status: 'recorded' }]);
  }
}

const close = (a: number, b: number) => Math.abs(a - b) < 1e-6;

it('feedback changes the next decision, persists over a restart, rolls back and resets', async () => {
  const first = await start();
  const untaught = await pOf(first);
  assert.ok(untaught > 0 && untaught < 1);
  await teach(first, ['Name the capital of Italy.', 'What is 7 times 8?', 'Spell "necessary".'], false);
  const taught = await pOf(first);
  assert.ok(taught < untaught - 0.01, `P(${TIER}) ${untaught} → ${taught} after three failures`);
  const learning = (await call(first, 'GET', '/admin/learning')).body;
  assert.equal(learning.tiers[TIER].updates, 3);
  assert.ok(learning.tiers[TIER].norm > 0 && learning.tiers[TIER].norm <= 3);
  const stats = (await call(first, 'GET', '/v1/stats')).body;
  assert.deepEqual(stats.learning.events_applied, { [TIER]: 3 });
  const metrics = (await call(first, 'GET', '/metrics')).body as string;
  assert.match(metrics, new RegExp(`mechroute_learning_events_total\\{tier="${TIER}"\\} 3`));
  const norm = new RegExp(`mechroute_learning_correction_norm\\{tier="${TIER}"\\} (\\S+)`).exec(metrics);
  assert.ok(norm && close(Number(norm[1]), learning.tiers[TIER].norm), 'the gauge shows |correction|');
  await first.close();

  const second = await start();
  assert.ok(close(await pOf(second), taught), 'the corrections survive a restart');
  // Version 2 of the policy (a reload) learns the other way; rolling back restores version 1's snapshot.
  await writeConfig('2');
  assert.equal((await call(second, 'POST', '/admin/reload')).body.policy_version, '2');
  await teach(second, ['What is 10 minus 3?', 'Name a primary colour.', 'What is 5 plus 5?'], true);
  const underV2 = await pOf(second);
  assert.ok(underV2 > taught + 0.01, `P ${taught} → ${underV2} after three successes`);
  const back = await call(second, 'POST', '/admin/policy/rollback');
  assert.deepEqual(back.body, { policy_version: '1', previous_version: '2' });
  assert.ok(close(await pOf(second), taught), 'rollback restores what version 1 had learned');
  const reset = await call(second, 'POST', '/admin/learning/reset');
  assert.equal(reset.status, 200);
  assert.ok(close(await pOf(second), untaught), 'a reset returns to the probes’ own P');
});
