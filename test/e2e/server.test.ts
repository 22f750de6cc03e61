import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { DEFAULT_PROBES_PATH } from '../../src/config/config-loader.js';
import { packageRoot } from '../../src/paths.js';
import { type RunningServer, startServer } from '../../src/server/server.js';
import type { LocalLlamaModel } from '../../src/tiers/providers/local-llama/local-llama-model.js';
import { createUpstreamModel, type OpenAIUpstream, startOpenAIUpstream } from '../support/openai-upstream.js';
import { localTierConfig, remoteTierConfig, writeServerConfig } from '../support/server-config.js';

/**
 * The routing server end to end: the real encoder, the shipped default probes, a real local tier, and
 * two real OpenAI-compatible upstreams on 127.0.0.1 (serving the local model) as the remote tiers, with
 * faults injected at them. Tier choice is steered with threshold overrides: threshold 0 takes the
 * cheapest tier with a probe (the local one), threshold 1 none, so the frontier, and a threshold between
 * two tiers' P(success) the dearer of them.
 */
const run = promisify(execFile);
const env = {
  MIXTRAL_KEY: 'sk-test-mixtral-000000000000',
  GPT4_KEY: 'sk-test-gpt4-1111111111111111',
  MECHROUTE_TEST_TOKENS: 'token-one,token-two',
};
const PROMPT =
  'Question: What is the boiling point of water at sea level?\nA. 50 C\nB. 100 C\nC. 150 C\nD. 200 C\nAnswer:';

let dir: string;
let local: LocalLlamaModel;
let mixtralA: OpenAIUpstream;
let mixtralB: OpenAIUpstream;
let gpt4: OpenAIUpstream;
let server: RunningServer;
let policyFile: string;
let logLines: string[];

const policyYaml = (version: string, threshold = 0.5) =>
  `version: "${version}"\nkind: threshold\non_unavailable: error\nthreshold:\n  default: ${threshold}\noutput_tokens:\n  default: 8\n`;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mechroute-e2e-'));
  local = await createUpstreamModel();
  mixtralA = await startOpenAIUpstream({ model: local, apiKey: env.MIXTRAL_KEY });
  mixtralB = await startOpenAIUpstream({ model: local, apiKey: env.MIXTRAL_KEY });
  gpt4 = await startOpenAIUpstream({ model: local, apiKey: env.GPT4_KEY });
  policyFile = join(dir, 'policy.yaml');
  await writeFile(policyFile, policyYaml('1'));
  const config = {
    server: {
      host: '127.0.0.1',
      port: 0,
      auth_tokens_env: 'MECHROUTE_TEST_TOKENS',
      body_limit_bytes: 65_536,
    },
    encoder: { model: 'gemma-3-270m-q4_k_m', gpu: 'auto' },
    probes: { path: DEFAULT_PROBES_PATH },
    tiers: [
      localTierConfig({ timeout_ms: 60_000 }),
      remoteTierConfig(
        'mixtral-8x7b-instruct',
        [
          { base_url: mixtralA.baseUrl, api_key_env: 'MIXTRAL_KEY' },
          { base_url: mixtralB.baseUrl, api_key_env: 'MIXTRAL_KEY' },
        ],
        { timeout_ms: 20_000, max_retries: 0, cooldown: { failures: 2, seconds: 30 } },
      ),
      remoteTierConfig('gpt-4-1106-preview', [{ base_url: gpt4.baseUrl, api_key_env: 'GPT4_KEY' }], {
        timeout_ms: 20_000,
        max_retries: 0,
        cooldown: { failures: 3, seconds: 30 },
      }),
    ],
    policy_file: policyFile,
  };
  const configFile = await writeServerConfig(dir, config);
  logLines = [];
  server = await startServer({
    configPath: configFile,
    port: 0,
    env,
    logLevel: 'info',
    logStream: { write: (line: string) => void logLines.push(line) },
  });
});

after(async () => {
  await server?.close();
  for (const upstream of [mixtralA, mixtralB, gpt4]) await upstream?.close();
  await local?.dispose();
  await rm(dir, { recursive: true, force: true });
});

const auth = { authorization: 'Bearer token-one' };
// Response bodies are checked field by field below; their full types are the server's, not the test's.
// biome-ignore lint/suspicious/noExplicitAny: see above
type Json = any;
const json = async (response: Response): Promise<Json> => response.json();
const client = () => new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'token-two', maxRetries: 0 });
const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
const chat = (extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  post(
    '/v1/chat/completions',
    { model: 'mechroute', messages: [{ role: 'user', content: PROMPT }], max_tokens: 6, ...extra },
    headers,
  );

describe('routing server', () => {
  it('reports health, readiness and models', async () => {
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    const ready = await json(await fetch(`${server.url}/readyz`));
    assert.equal(ready.status, 'ready');
    assert.equal(ready.policy_version, '1');
    assert.deepEqual(Object.keys(ready.tiers).sort(), [
      'gemma-3-270m',
      'gpt-4-1106-preview',
      'mixtral-8x7b-instruct',
    ]);
    const models = await client().models.list();
    assert.deepEqual(models.data.map((m) => m.id).sort(), [
      'gemma-3-270m',
      'gpt-4-1106-preview',
      'mechroute',
      'mixtral-8x7b-instruct',
    ]);
  });

  it('requires a bearer token on the API', async () => {
    const response = await fetch(`${server.url}/v1/route`, { method: 'POST', body: '{}' });
    assert.equal(response.status, 401);
    assert.equal((await json(response)).error.code, 'MR_ERR_UNAUTHORIZED');
  });

  it('decides without answering on /v1/route', async () => {
    const response = await post('/v1/route', { prompt: PROMPT });
    assert.equal(response.status, 200);
    const body = await json(response);
    assert.ok(['mixtral-8x7b-instruct', 'gpt-4-1106-preview'].includes(body.tier));
    for (const tier of ['gemma-3-270m', 'mixtral-8x7b-instruct', 'gpt-4-1106-preview']) {
      assert.ok(body.p_success[tier] > 0 && body.p_success[tier] < 1, `p_success for ${tier}`);
    }
    assert.ok(body.difficulty >= 0 && body.difficulty <= 1);
    assert.equal(body.policy_version, '1');
    assert.ok(body.encoder_ms > 0);
    assert.equal(response.headers.get('x-mechroute-tier'), body.tier);
    assert.equal(response.headers.get('x-mechroute-policy-version'), '1');
    assert.ok(Number(response.headers.get('x-mechroute-p-success')) > 0);
    const forced = await json(await post('/v1/route', { prompt: PROMPT }, { 'x-mechroute-threshold': '1' }));
    assert.equal(forced.tier, 'gpt-4-1106-preview');
  });

  it('answers through the official openai client, plain and streaming, with decision headers', async () => {
    const { data, response } = await client()
      .chat.completions.create(
        { model: 'mechroute', messages: [{ role: 'user', content: PROMPT }], max_tokens: 6 },
        { headers: { 'x-mechroute-threshold': '0' } },
      )
      .withResponse();
    // Threshold 0: the cheapest tier with a probe, the local one since the default bundle probes it.
    assert.equal(response.headers.get('x-mechroute-tier'), 'gemma-3-270m');
    assert.equal(data.model, 'gemma-3-270m');
    assert.ok(typeof data.choices[0]!.message.content === 'string');
    assert.ok(data.usage!.completion_tokens > 0);

    const stream = await client().chat.completions.create(
      { model: 'mechroute', messages: [{ role: 'user', content: PROMPT }], max_tokens: 6, stream: true },
      { headers: { 'x-mechroute-threshold': '1' } },
    );
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.ok(text.length > 0);
    assert.ok(finish === 'stop' || finish === 'length');
  });

  it('bypasses routing when the model names a tier, including the local one', async () => {
    const response = await chat({ model: 'gemma-3-270m' });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-mechroute-tier'), 'gemma-3-270m');
    const body = await json(response);
    assert.equal(body.model, 'gemma-3-270m');
    assert.equal(body.mechroute.answered_by, 'gemma-3-270m');
  });

  it('fails over to the next deployment, then cools the failing one down', async () => {
    const before = mixtralA.requests.length;
    mixtralA.setFault({ kind: 'status', status: 500 });
    try {
      for (let i = 0; i < 4; i++) {
        const response = await chat({ model: 'mixtral-8x7b-instruct' });
        assert.equal(response.status, 200, `request ${i}`);
      }
      // Two failures open A's breaker; the later requests go straight to B.
      assert.equal(mixtralA.requests.length - before, 2);
    } finally {
      mixtralA.setFault(undefined);
    }
  });

  it('fails over to the next tier up before the first byte, and never silently truncates a stream', async () => {
    gpt4.setFault(undefined);
    // A threshold between the local tier's P(success) and Mixtral's decides Mixtral.
    const { p_success: p } = await json(await post('/v1/route', { prompt: PROMPT }));
    assert.ok(p['gemma-3-270m'] < p['mixtral-8x7b-instruct'], JSON.stringify(p));
    const between = (p['gemma-3-270m'] + p['mixtral-8x7b-instruct']) / 2;
    mixtralB.setFault({ kind: 'reset' });
    const routed = await chat({}, { 'x-mechroute-threshold': String(between) });
    mixtralB.setFault(undefined);
    assert.equal(routed.status, 200);
    const body = await json(routed);
    assert.equal(body.mechroute.decided_tier, 'mixtral-8x7b-instruct');
    assert.equal(body.mechroute.answered_by, 'gpt-4-1106-preview');

    gpt4.setFault({ kind: 'drop-mid-stream', afterDeltas: 1 });
    try {
      const stream = await client().chat.completions.create(
        { model: 'mechroute', messages: [{ role: 'user', content: PROMPT }], max_tokens: 8, stream: true },
        { headers: { 'x-mechroute-threshold': '1' } },
      );
      await assert.rejects(async () => {
        for await (const _chunk of stream) {
          // drain until the error event
        }
      });
    } finally {
      gpt4.setFault(undefined);
    }
  });

  it('answers every request of a faulty burst or fails it explicitly', async () => {
    gpt4.queueFaults(
      { kind: 'status', status: 503 },
      { kind: 'reset' },
      { kind: 'slow-first-byte', delayMs: 300 },
      { kind: 'status', status: 429, retryAfterSeconds: 1 },
    );
    const responses = await Promise.all(
      Array.from({ length: 8 }, (_, i) => chat({ model: 'gpt-4-1106-preview', stream: i % 2 === 0 })),
    );
    for (const response of responses) {
      const text = await response.text();
      if (response.status === 200) {
        assert.ok(text.length > 0);
      } else {
        assert.ok(JSON.parse(text).error.code.startsWith('MR_ERR_'), text);
      }
    }
    assert.ok(responses.some((r) => r.status === 200));
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });

  it('turns bad requests into 4xx JSON errors and stays up', async () => {
    const cases: [string | object, number, string][] = [
      ['{"model": "mechroute", "messages": [', 400, 'malformed JSON'],
      [{ model: 'mechroute', messages: 'hello' }, 400, 'wrong type'],
      [{ model: 'mechroute', messages: [] }, 400, 'empty messages'],
      [
        { model: 'mechroute', messages: [{ role: 'user', content: 'x' }], max_tokens: -1 },
        400,
        'bad max_tokens',
      ],
      [{ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }, 404, 'unknown model'],
      [{ model: 'mechroute', messages: [{ role: 'user', content: 'x'.repeat(70_000) }] }, 413, 'huge body'],
    ];
    for (const [body, status, what] of cases) {
      const response = await post('/v1/chat/completions', body);
      assert.equal(response.status, status, what);
      const error = (await json(response)).error;
      assert.ok(typeof error.message === 'string' && error.code.startsWith('MR_ERR_'), what);
    }
    const badOverride = await chat({}, { 'x-mechroute-threshold': 'high' });
    assert.equal(badOverride.status, 400);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });

  it('reloads the policy file, keeps the old policy on a broken one, and rolls back', async () => {
    const version = async () => (await json(await post('/v1/route', { prompt: PROMPT }))).policy_version;
    const replace = async (text: string) => {
      await writeFile(`${policyFile}.tmp`, text);
      await rename(`${policyFile}.tmp`, policyFile);
    };
    await replace('version: "broken"\nkind: nonsense\n');
    await sleep(800);
    assert.equal(await version(), '1');
    await replace(policyYaml('2', 0.4));
    for (let i = 0; i < 30 && (await version()) !== '2'; i++) await sleep(100);
    assert.equal(await version(), '2');
    const rollback = await post('/admin/policy/rollback', {});
    assert.equal(rollback.status, 200);
    assert.equal(await version(), '1');
  });

  it('exposes metrics and cost per successful outcome from feedback', async () => {
    const answered = await json(await chat({}, { 'x-mechroute-threshold': '1' }));
    const feedback = await post('/v1/feedback', { request_id: answered.mechroute.request_id, success: true });
    assert.equal(feedback.status, 200);
    assert.equal(
      (await post('/v1/feedback', { request_id: answered.mechroute.request_id, success: true })).status,
      409,
    );
    assert.equal((await post('/v1/feedback', { request_id: 'req-unknown', success: false })).status, 404);
    const stats = await json(await fetch(`${server.url}/v1/stats`, { headers: auth }));
    assert.ok(stats.tiers['gpt-4-1106-preview'].cost_per_success_usd > 0);
    // `mechroute stats` reads the same numbers from the running server.
    const { stdout } = await run(
      process.execPath,
      [join(packageRoot, 'bin', 'mechroute.js'), 'stats', '--url', server.url],
      {
        env: { ...process.env, MECHROUTE_TOKEN: 'token-two' },
      },
    );
    assert.match(stdout, /gpt-4-1106-preview\s+\d+/);
    assert.match(stdout, /overall cost per success: \$\d/);
    // A streamed answer is counted once (fastify's onResponse hook also sees hijacked replies).
    const streamedOk = async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const line = text
        .split('\n')
        .find((l) => l.startsWith('mechroute_requests_total{route="/v1/chat/completions",status="200"}'));
      return Number(line?.split(' ').pop() ?? 0);
    };
    const before = await streamedOk();
    await (await chat({ model: 'gemma-3-270m', stream: true })).text();
    await sleep(100);
    assert.equal((await streamedOk()) - before, 1);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    for (const name of [
      'mechroute_requests_total',
      'mechroute_decisions_total',
      'mechroute_fallbacks_total',
      'mechroute_cost_usd_total',
      'mechroute_encoder_latency_seconds_bucket',
      'mechroute_cost_per_success_usd',
    ]) {
      assert.ok(metrics.includes(name), name);
    }
  });

  it('never writes API keys or bearer tokens to its logs', async () => {
    const logs = logLines.join('');
    assert.ok(logs.length > 0);
    for (const secret of [env.MIXTRAL_KEY, env.GPT4_KEY, 'token-one', 'token-two']) {
      assert.ok(!logs.includes(secret), `log leaks ${secret}`);
    }
    assert.ok((await readFile(policyFile, 'utf8')).includes('version'));
  });
});

describe('a server without auth tokens, with a short request deadline', () => {
  let openDir: string;
  let open: RunningServer;
  before(async () => {
    openDir = await mkdtemp(join(tmpdir(), 'mechroute-open-'));
    const configFile = await writeServerConfig(openDir, {
      server: { host: '127.0.0.1', port: 0, request_timeout_ms: 1_500 },
      encoder: { model: 'gemma-3-270m-q4_k_m', gpu: 'auto' },
      probes: { path: DEFAULT_PROBES_PATH },
      tiers: [
        remoteTierConfig('gpt-4-1106-preview', [{ base_url: gpt4.baseUrl, api_key_env: 'GPT4_KEY' }], {
          timeout_ms: 60_000,
          max_retries: 0,
        }),
      ],
    });
    open = await startServer({ configPath: configFile, port: 0, env, logLevel: 'silent' });
  });
  after(async () => {
    await open?.close();
    await rm(openDir, { recursive: true, force: true });
  });
  const ask = (content: string, stream = false) =>
    fetch(`${open.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-4-1106-preview',
        messages: [{ role: 'user', content }],
        max_tokens: 4,
        stream,
      }),
    });

  it('cancels the tier call and answers 504 when the whole request outlives the deadline, plain and streaming', async () => {
    const seen = gpt4.requests.length;
    // The upstream would take 20 s to its first byte; the tier's own timeout (60 s) is far off.
    gpt4.setFault({ kind: 'slow-first-byte', delayMs: 20_000 });
    try {
      for (const stream of [false, true]) {
        const response = await ask(PROMPT, stream);
        const body = await json(response);
        assert.equal(response.status, 504, JSON.stringify(body));
        assert.equal(body.error.code, 'MR_ERR_REQUEST_TIMEOUT');
        assert.match(body.error.message, /request_timeout_ms \(1500 ms\)/);
      }
      // Both upstream calls were cancelled, not left running.
      for (let i = 0; i < 50 && gpt4.requests.slice(seen).some((r) => r.outcome !== 'client-gone'); i += 1)
        await sleep(100);
      assert.deepEqual(
        gpt4.requests.slice(seen).map((r) => r.outcome),
        ['client-gone', 'client-gone'],
      );
    } finally {
      gpt4.setFault(undefined);
    }
    // A request within the deadline is answered as usual.
    assert.equal((await ask('Say hi.')).status, 200);
  });

  it('keeps the admin endpoints to loopback clients, and the API open', async () => {
    const fromLoopback = await open.app.inject({ method: 'GET', url: '/admin/policy' });
    assert.equal(fromLoopback.statusCode, 200);
    for (const [method, url] of [
      ['GET', '/admin/policy'],
      ['POST', '/admin/policy/rollback'],
    ] as const) {
      const remote = await open.app.inject({ method, url, remoteAddress: '203.0.113.7' });
      assert.equal(remote.statusCode, 403, url);
      assert.equal(remote.json().error.code, 'MR_ERR_FORBIDDEN');
    }
    const models = await open.app.inject({ method: 'GET', url: '/v1/models', remoteAddress: '203.0.113.7' });
    assert.equal(models.statusCode, 200);
  });
});
