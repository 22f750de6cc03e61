import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer } from '../../src/server/server.js';
import { type OpenAIUpstream, startOpenAIUpstream } from '../support/openai-upstream.js';
import { createScriptedModel } from '../support/scripted-model.js';
import { remoteTierConfig, writeServerConfig } from '../support/server-config.js';

/**
 * Graceful shutdown (issue 16, #5): requests in flight finish within server.shutdown_drain_ms or end
 * with MR_ERR_SHUTTING_DOWN, and `close()` then returns — a client's keep-alive connection that was
 * busy when shutdown began must not hold the process for fastify's 72 s keep-alive timeout.
 */
let dir: string;
let upstream: OpenAIUpstream;
const script = { deltas: 40, deltaDelayMs: 100 };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mechroute-shutdown-'));
  upstream = await startOpenAIUpstream({ model: createScriptedModel(script) });
});
after(async () => {
  await upstream?.close();
  await rm(dir, { recursive: true, force: true });
});

it('drains, cancels what outlives the drain, and closes without waiting on keep-alive connections', {
  timeout: 60_000,
}, async () => {
  const configPath = await writeServerConfig(dir, {
    server: { host: '127.0.0.1', port: 0, shutdown_drain_ms: 1_500 },
    tiers: [
      remoteTierConfig('mixtral-8x7b-instruct', [{ base_url: upstream.baseUrl }], { timeout_ms: 20_000 }),
    ],
    policy: { version: 'shutdown', kind: 'threshold', threshold: {} },
  });
  const server = await startServer({ configPath, port: 0, logLevel: 'silent', watchPolicy: false });
  const ask = (words: number, stream: boolean) =>
    fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'mixtral-8x7b-instruct',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: words,
        stream,
      }),
    }).then(async (r) => ({ status: r.status, text: await r.text() }));
  // 4 words (0.4 s) finish within the drain; 40 (4 s) do not.
  const requests = [ask(4, false), ask(4, true), ask(40, false), ask(40, true)];
  await sleep(200);
  await server.close();
  const [shortPlain, shortStream, longPlain, longStream] = await Promise.all(requests);
  assert.equal(shortPlain!.status, 200);
  assert.ok(shortStream!.text.includes('data: [DONE]'));
  assert.equal(longPlain!.status, 503);
  assert.match(longPlain!.text, /MR_ERR_SHUTTING_DOWN/);
  assert.match(longStream!.text, /MR_ERR_SHUTTING_DOWN/);
  assert.ok(!longStream!.text.includes('data: [DONE]'));
});
