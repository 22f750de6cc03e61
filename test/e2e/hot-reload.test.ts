import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
 * Hot add and drain: a real server (real encoder) starts with two remote tiers and a bundle with their two
 * heads. A reload to a config with a third tier and a bundle that has its head routes to it at once; a
 * reload that takes it out lets its call in progress finish and never picks it again. Reloads that cannot
 * be served (a tier without a head, a broken bundle) are refused whole.
 */
const env = { UPSTREAM_KEY: 'sk-test-upstream-0000000000' };
const NEW_TIER = 'gemma-3-270m';
const policy = { version: '1', kind: 'threshold', threshold: { default: 0 }, output_tokens: { default: 8 } };

let dir: string;
let local: LocalLlamaModel;
let shared: OpenAIUpstream;
let added: OpenAIUpstream;
let server: RunningServer;
let twoHeads: string;
let configFile: string;
const logLines: { level: number; msg: string }[] = [];

const config = (bundle: string, withNewTier: boolean) => {
  const deployments = (u: OpenAIUpstream) => [{ base_url: u.baseUrl, api_key_env: 'UPSTREAM_KEY' }];
  return {
    server: { host: '127.0.0.1', port: 0 },
    encoder: { model: 'gemma-3-270m-q4_k_m', gpu: 'auto' },
    probes: { path: bundle },
    tiers: [
      remoteTierConfig('mixtral-8x7b-instruct', deployments(shared), { max_retries: 0 }),
      remoteTierConfig('gpt-4-1106-preview', deployments(shared), { max_retries: 0 }),
      ...(withNewTier
        ? [
            {
              id: NEW_TIER,
              provider: 'openai',
              model: NEW_TIER,
              price: { input_per_mtok: 0.01, output_per_mtok: 0.01 },
              context_window: 4096,
              max_retries: 0,
              deployments: deployments(added),
            },
          ]
        : []),
    ],
    policy,
  };
};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mechroute-reload-'));
  local = await createUpstreamModel();
  shared = await startOpenAIUpstream({ model: local, apiKey: env.UPSTREAM_KEY });
  added = await startOpenAIUpstream({ model: local, apiKey: env.UPSTREAM_KEY });
  // The shipped bundle without the new tier's head: what the router ran before the tier was added.
  const bundle = JSON.parse(await readFile(DEFAULT_PROBES_PATH, 'utf8'));
  bundle.tiers = bundle.tiers.filter((t: { id: string }) => t.id !== NEW_TIER);
  delete bundle.mlp;
  twoHeads = join(dir, 'two-heads.json');
  await writeFile(twoHeads, JSON.stringify(bundle));
  configFile = await writeServerConfig(dir, config(twoHeads, false));
  server = await startServer({
    configPath: configFile,
    port: 0,
    env,
    logLevel: 'info',
    logStream: { write: (line: string) => void logLines.push(JSON.parse(line)) },
  });
});

after(async () => {
  await server?.close();
  await added?.close();
  await shared?.close();
  await local?.dispose();
  await rm(dir, { recursive: true, force: true });
});

const call = (method: string, path: string, body?: unknown) => callServer(server, method, path, body);
const prompts = [
  'What is 2 + 2?',
  'Name the capital of France.',
  'Prove that there are infinitely many primes.',
  'Translate "good morning" into German.',
  'Which planet is closest to the sun?',
];
const chat = (content: string) => ({
  model: 'mechroute',
  max_tokens: 4,
  messages: [{ role: 'user', content }],
});

it('a reload adds a tier with its head and routes to it; a reload without it drains it', async () => {
  const before = await call('POST', '/v1/route', { prompt: prompts[0] });
  assert.equal(before.body.tier, 'mixtral-8x7b-instruct');
  assert.equal(before.body.p_success[NEW_TIER], undefined);

  // Refused whole: the third tier has no head in the two-head bundle.
  await writeServerConfig(dir, config(twoHeads, true));
  const headless = await call('POST', '/admin/reload');
  assert.equal(headless.status, 422, JSON.stringify(headless.body));
  assert.equal(headless.body.error.code, 'MR_ERR_RELOAD_REFUSED');
  assert.match(headless.body.error.message, /gemma-3-270m has no head in the probe bundle/);
  const logged = logLines.filter((l) => l.level >= 50 && /config reload .* refused/.test(l.msg));
  assert.equal(logged.length, 1, 'the refusal is logged as an error');
  assert.match(logged[0]!.msg, /no head in the probe bundle/);
  // Refused whole: a bundle that is not one.
  const broken = join(dir, 'broken.json');
  await writeFile(broken, '{"format": "mechroute-probes", "tiers": [');
  await writeServerConfig(dir, config(broken, true));
  const bad = await call('POST', '/admin/reload');
  assert.equal(bad.status, 422);
  assert.match(bad.body.error.message, /broken\.json/);
  const unchanged = await call('GET', '/admin/tiers');
  assert.deepEqual(
    unchanged.body.tiers.map((t: { id: string }) => t.id),
    ['mixtral-8x7b-instruct', 'gpt-4-1106-preview'],
  );
  assert.equal(unchanged.body.probes, twoHeads);
  assert.equal((await call('POST', '/v1/route', { prompt: prompts[0] })).body.tier, 'mixtral-8x7b-instruct');

  // SIGHUP with the new tier and the bundle that has its head: routed to from the next decision.
  await writeServerConfig(dir, config(DEFAULT_PROBES_PATH, true));
  process.kill(process.pid, 'SIGHUP');
  for (let i = 0; (await call('GET', '/admin/tiers')).body.tiers.length !== 3; i++) {
    assert.ok(i < 200, 'the SIGHUP reload did not happen');
    await sleep(50);
  }
  const routed = await call('POST', '/v1/route', { prompt: prompts[0] });
  assert.equal(routed.body.tier, NEW_TIER, JSON.stringify(routed.body));
  assert.ok(routed.body.p_success[NEW_TIER] > 0);
  const answered = await call('POST', '/v1/chat/completions', chat(prompts[1]!));
  assert.equal(answered.status, 200, JSON.stringify(answered.body));
  assert.equal(answered.body.mechroute.answered_by, NEW_TIER);
  assert.equal(added.requests.length, 1);

  // A call in progress on the new tier when a reload takes it out.
  added.setFault({ kind: 'slow-first-byte', delayMs: 2_000 });
  const inFlight = call('POST', '/v1/chat/completions', chat(prompts[2]!));
  for (let i = 0; added.requests.length < 2; i++) {
    assert.ok(i < 400, 'the request never reached the new tier');
    await sleep(25);
  }
  await writeServerConfig(dir, config(DEFAULT_PROBES_PATH, false));
  const removed = await call('POST', '/admin/reload');
  assert.equal(removed.status, 200, JSON.stringify(removed.body));
  assert.deepEqual(removed.body.removed, [NEW_TIER]);
  assert.deepEqual(removed.body.draining, [{ id: NEW_TIER, in_flight: 1 }]);
  // New decisions never pick it, though the bundle still has its head; naming it is an unknown model.
  for (const prompt of prompts) {
    const decided = await call('POST', '/v1/route', { prompt });
    assert.equal(decided.body.tier, 'mixtral-8x7b-instruct');
  }
  const named = await call('POST', '/v1/chat/completions', { ...chat(prompts[0]!), model: NEW_TIER });
  assert.equal(named.status, 404);
  // The call in progress finishes on the drained tier.
  const finished = await inFlight;
  assert.equal(finished.status, 200, JSON.stringify(finished.body));
  assert.equal(finished.body.mechroute.answered_by, NEW_TIER);
  assert.deepEqual((await call('GET', '/admin/tiers')).body.draining, []);
  assert.equal(added.requests.length, 2, 'nothing else reached the removed tier');
});

it('a reload that moves the policy to another file watches that file from then on', async () => {
  const policyFile = join(dir, 'policy.json');
  await writeFile(policyFile, JSON.stringify({ ...policy, version: 'moved-1' }));
  const { policy: _inline, ...withoutPolicy } = config(DEFAULT_PROBES_PATH, false);
  await writeServerConfig(dir, { ...withoutPolicy, policy_file: policyFile });
  const reloaded = await call('POST', '/admin/reload');
  assert.equal(reloaded.status, 200, JSON.stringify(reloaded.body));
  assert.equal((await call('GET', '/admin/policy')).body.policy_version, 'moved-1');
  // Past the settle time of any watcher event the config file's own rewrite caused.
  await sleep(1_500);
  assert.equal((await call('GET', '/admin/policy')).body.policy_version, 'moved-1');
  // An edit to the new file is picked up without a reload call (the watcher waits for it to settle).
  await writeFile(policyFile, JSON.stringify({ ...policy, version: 'moved-2' }));
  for (let i = 0; (await call('GET', '/admin/policy')).body.policy_version !== 'moved-2'; i++) {
    assert.ok(i < 200, 'the edit to the policy file the reloaded config names was never loaded');
    await sleep(50);
  }
  assert.ok(logLines.some((l) => l.msg === 'watching the policy file the reloaded config names'));
});

it('refuses a reload to a bundle trained on another prompt window than the running encoder reads', async () => {
  const windowed = JSON.parse(await readFile(DEFAULT_PROBES_PATH, 'utf8'));
  windowed.features.max_prompt_tokens = 128;
  const file = join(dir, 'windowed.json');
  await writeFile(file, JSON.stringify(windowed));
  const before = (await call('GET', '/admin/tiers')).body.probes;
  await writeServerConfig(dir, config(file, false));
  const refused = await call('POST', '/admin/reload');
  assert.equal(refused.status, 422, JSON.stringify(refused.body));
  assert.match(refused.body.error.message, /last 128 tokens .* set encoder\.max_prompt_tokens to 128/);
  assert.equal((await call('GET', '/admin/tiers')).body.probes, before);
});
