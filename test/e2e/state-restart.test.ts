import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_PROBES_PATH } from '../../src/config/config-loader.js';
import { type RunningServer, startServer } from '../../src/server/server.js';
import type { LocalLlamaModel } from '../../src/tiers/providers/local-llama/local-llama-model.js';
import { createUpstreamModel, type OpenAIUpstream, startOpenAIUpstream } from '../support/openai-upstream.js';
import { callServer } from '../support/server-call.js';
import { remoteTierConfig, writeServerConfig } from '../support/server-config.js';

/**
 * What survives a restart: a real server (real encoder, default probes, two remote tiers on loopback
 * upstreams serving the local model) answers requests and reloads its policy, stops; a second server on
 * the same state file takes feedback on the first one's requests, shows its stats, and rolls back to the
 * policy before the first one's reload.
 */
const env = { UPSTREAM_KEY: 'sk-test-upstream-0000000000' };
const policyYaml = (version: string) =>
  `version: "${version}"\nkind: threshold\nthreshold:\n  default: 0\noutput_tokens:\n  default: 8\n`;

let dir: string;
let local: LocalLlamaModel;
let upstream: OpenAIUpstream;
let configFile: string;
let policyFile: string;
const running: RunningServer[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mechroute-restart-'));
  local = await createUpstreamModel();
  upstream = await startOpenAIUpstream({ model: local, apiKey: env.UPSTREAM_KEY });
  policyFile = join(dir, 'policy.yaml');
  await writeFile(policyFile, policyYaml('1'));
  const deployments = [{ base_url: upstream.baseUrl, api_key_env: 'UPSTREAM_KEY' }];
  configFile = await writeServerConfig(dir, {
    server: { host: '127.0.0.1', port: 0 },
    encoder: { model: 'gemma-3-270m-q4_k_m', gpu: 'auto' },
    probes: { path: DEFAULT_PROBES_PATH },
    tiers: [
      remoteTierConfig('mixtral-8x7b-instruct', deployments, { max_retries: 0 }),
      remoteTierConfig('gpt-4-1106-preview', deployments, { max_retries: 0 }),
    ],
    policy_file: policyFile,
  });
});

after(async () => {
  for (const server of running) await server.close();
  await upstream?.close();
  await local?.dispose();
  await rm(dir, { recursive: true, force: true });
});

async function start(): Promise<RunningServer> {
  const server = await startServer({ configPath: configFile, port: 0, env, logLevel: 'silent' });
  running.push(server);
  return server;
}

const call = callServer;
const chat = (stream: boolean) => ({
  model: 'mechroute',
  stream,
  max_tokens: 4,
  messages: [{ role: 'user', content: 'Question: What is 2 + 2?\nAnswer:' }],
});

it('feedback, stats and policy history survive a restart on the same state file', async () => {
  const first = await start();
  const plain = await call(first, 'POST', '/v1/chat/completions', chat(false));
  assert.equal(plain.status, 200, JSON.stringify(plain.body));
  assert.equal(plain.body.mechroute.policy_version, '1');
  const plainId: string = plain.body.mechroute.request_id;

  const streamed = await fetch(`${first.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(chat(true)),
  });
  assert.equal(streamed.status, 200);
  assert.match(await streamed.text(), /data: \[DONE\]/);
  const streamedId = streamed.headers.get('x-request-id')!;
  assert.equal(
    (await call(first, 'POST', '/v1/feedback', { request_id: streamedId, success: false })).status,
    200,
  );

  // A reload in the first process: version 2 replaces version 1.
  await writeFile(`${policyFile}.tmp`, policyYaml('2'));
  await rename(`${policyFile}.tmp`, policyFile);
  for (let i = 0; (await call(first, 'GET', '/admin/policy')).body.policy_version !== '2'; i++) {
    assert.ok(i < 200, 'the policy reload did not happen');
    await sleep(50);
  }

  // One server per state file: a second one is refused before it loads anything.
  await assert.rejects(start(), { code: 'MR_ERR_STATE_BUSY' });
  await first.close();

  const second = await start();
  const rated = await call(second, 'POST', '/v1/feedback', { request_id: plainId, success: true });
  assert.deepEqual([rated.status, rated.body], [200, { status: 'recorded' }]);
  assert.equal(
    (await call(second, 'POST', '/v1/feedback', { request_id: plainId, success: true })).status,
    409,
  );
  assert.equal(
    (await call(second, 'POST', '/v1/feedback', { request_id: streamedId, success: true })).status,
    409,
    'the rating given before the restart is remembered',
  );
  assert.equal(
    (await call(second, 'POST', '/v1/feedback', { request_id: 'req-unknown', success: true })).status,
    404,
  );

  const stats = (await call(second, 'GET', '/v1/stats')).body;
  assert.equal(stats.requests, 2);
  assert.equal(stats.tiers['mixtral-8x7b-instruct'].requests, 2);
  assert.deepEqual([stats.overall.feedback, stats.overall.successes], [2, 1]);
  assert.equal(stats.policies['1'].feedback, 2);
  assert.equal(stats.policy_version, '2');

  const policy = (await call(second, 'GET', '/admin/policy')).body;
  assert.deepEqual([policy.policy_version, policy.history], ['2', ['1']]);
  const back = await call(second, 'POST', '/admin/policy/rollback');
  assert.deepEqual([back.status, back.body], [200, { policy_version: '1', previous_version: '2' }]);
  const routed = await call(second, 'POST', '/v1/route', { prompt: 'What is 2 + 2?' });
  assert.equal(routed.body.policy_version, '1');
});
