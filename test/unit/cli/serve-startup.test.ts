import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { listenPort } from '../../../src/cli/commands/serve.js';
import { startupSummary } from '../../../src/cli/startup-summary.js';
import {
  DEFAULT_CONFIG_PATH,
  loadConfig,
  resolveSecrets,
  routeTiers,
} from '../../../src/config/config-loader.js';

describe('mechroute serve: the startup line and the port', () => {
  test('with no remote keys: one line naming the unavailable tiers, why, and how to point one at an endpoint', async () => {
    const config = await loadConfig(DEFAULT_CONFIG_PATH);
    const tiers = routeTiers(config, resolveSecrets(config, {}));
    const line = startupSummary('http://127.0.0.1:8080', tiers, config.tiers);
    assert.equal(
      line,
      'mechroute: serving on http://127.0.0.1:8080; routing to gemma-3-270m; unavailable: ' +
        'mixtral-8x7b-instruct (MIXTRAL_BASE_URL, MIXTRAL_API_KEY are not set), ' +
        'gpt-4-1106-preview (OPENAI_API_KEY is not set); to serve a tier from any OpenAI-compatible endpoint ' +
        '(vLLM, llama-server, LiteLLM, OpenRouter), set its variables and restart, e.g. ' +
        'MIXTRAL_BASE_URL=http://localhost:8000/v1 MIXTRAL_API_KEY=…\n',
    );
    assert.equal(line.split('\n').length, 2, 'one line');

    // Only the key of the OpenAI tier missing: the hint names the variable that is left.
    const some = routeTiers(
      config,
      resolveSecrets(config, { MIXTRAL_BASE_URL: 'http://x/v1', MIXTRAL_API_KEY: 'k' }),
    );
    assert.match(
      startupSummary('http://h:1', some, config.tiers),
      /routing to gemma-3-270m, mixtral-8x7b-instruct; unavailable: gpt-4-1106-preview \(OPENAI_API_KEY is not set\); .*e\.g\. OPENAI_API_KEY=…\n$/,
    );

    const all = routeTiers(
      config,
      resolveSecrets(config, { MIXTRAL_BASE_URL: 'http://x/v1', MIXTRAL_API_KEY: 'k', OPENAI_API_KEY: 'k' }),
    );
    assert.equal(
      startupSummary('http://h:1', all, config.tiers),
      'mechroute: serving on http://h:1; every tier is available: gemma-3-270m, mixtral-8x7b-instruct, gpt-4-1106-preview\n',
    );
  });

  test('names the tiers the bundle has no probe for, which the policies reach only as a fallback', async () => {
    const config = await loadConfig(DEFAULT_CONFIG_PATH);
    const all = routeTiers(
      config,
      resolveSecrets(config, { MIXTRAL_BASE_URL: 'http://x/v1', MIXTRAL_API_KEY: 'k', OPENAI_API_KEY: 'k' }),
    );
    const probed = new Set(['mixtral-8x7b-instruct', 'gpt-4-1106-preview']);
    assert.equal(
      startupSummary('http://h:1', all, config.tiers, probed),
      'mechroute: serving on http://h:1; every tier is available: gemma-3-270m, mixtral-8x7b-instruct, ' +
        'gpt-4-1106-preview; no probe in the bundle, so reached only as a fallback: gemma-3-270m\n',
    );
    const none = routeTiers(config, resolveSecrets(config, {}));
    assert.match(
      startupSummary('http://h:1', none, config.tiers, probed),
      /; unavailable: .*; no probe in the bundle, so reached only as a fallback: gemma-3-270m; to serve a tier/,
    );
    assert.doesNotMatch(
      startupSummary('http://h:1', all, config.tiers, new Set([...probed, 'gemma-3-270m'])),
      /no probe/,
    );
  });

  test('the port: --port, else MECHROUTE_PORT, else PORT, else the config’s', () => {
    assert.equal(listenPort(undefined, {}), undefined);
    assert.equal(listenPort(undefined, { PORT: '9000' }), 9000);
    assert.equal(listenPort(undefined, { PORT: '9000', MECHROUTE_PORT: '9100' }), 9100);
    assert.equal(listenPort('0', { PORT: '9000', MECHROUTE_PORT: '9100' }), 0);
    assert.throws(
      () => listenPort(undefined, { PORT: 'eighty' }),
      /serve: PORT must be a port number 0\.\.65535, got "eighty"/,
    );
    assert.throws(() => listenPort('70000', {}), /--port must be a port number 0\.\.65535, got "70000"/);
  });
});
