import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig, parseConfig } from '../../../src/config/config-loader.js';
import { type ConfigInput, configJsonSchema } from '../../../src/config/config-schema.js';
import { InvalidFileError } from '../../../src/errors.js';

/** The `mode`, `steps` and `advisor` settings: defaults, references to tiers, and the published schema. */
const base = (): ConfigInput => ({
  tiers: [
    { id: 'small', provider: 'local', model: 'gemma-3-270m-q4_k_m', context_window: 8192 },
    {
      id: 'big',
      provider: 'openai',
      model: 'gpt-4o',
      price: { input_per_mtok: 2.5, output_per_mtok: 10 },
      context_window: 128_000,
      deployments: [{ base_url: 'https://api.openai.com/v1', api_key_env: 'OPENAI_API_KEY' }],
    },
  ],
});

const refused = (config: unknown, pattern: RegExp) =>
  assert.throws(
    () => parseConfig(config, 'c.yaml'),
    (error: unknown) => error instanceof InvalidFileError && pattern.test(error.message),
  );

test('defaults: routed answers, no step mode, an advisor budget of one call', () => {
  const config = parseConfig(base(), 'c.yaml');
  assert.equal(config.mode, 'route');
  assert.equal(config.steps, undefined);
  assert.deepEqual(config.advisor, { budget: 1, max_rounds: 4, max_advice_tokens: 512 });
  const steps = parseConfig({ ...base(), steps: { probes: 'steps.json' } }, 'c.yaml').steps!;
  assert.deepEqual(steps, {
    probes: 'steps.json',
    threshold: 0.5,
    max_switches: 2,
    max_steps: 16,
    max_step_tokens: 128,
  });
});

test('mode "steps" needs a steps section; workers and advisors must be configured tiers', () => {
  refused({ ...base(), mode: 'steps' }, /mode: mode "steps" needs a `steps` section/);
  refused({ ...base(), steps: { probes: 's.json', worker: 'tiny' } }, /steps\.worker: unknown tier "tiny"/);
  refused({ ...base(), advisor: { advisor: 'huge' } }, /advisor\.advisor: unknown tier "huge"/);
  refused({ ...base(), advisor: { budget: -1 } }, /advisor\.budget/);
  refused({ ...base(), steps: { probes: 's.json', threshold: 2 } }, /steps\.threshold/);
  refused({ ...base(), steps: { probes: 's.json', tau: 0.5 } }, /tau/);
});

test('the step bundle path is resolved from the config file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mechroute-modes-'));
  try {
    const file = join(dir, 'config.json');
    await writeFile(
      file,
      JSON.stringify({ ...base(), mode: 'steps', steps: { probes: 'probes/steps.json' } }),
    );
    const loaded = await loadConfig(file);
    assert.equal(loaded.steps?.probes, join(dir, 'probes', 'steps.json'));
    assert.equal(loaded.mode, 'steps');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the published JSON Schema documents the modes', () => {
  const schema = configJsonSchema() as { properties: Record<string, { description?: string }> };
  for (const key of ['mode', 'steps', 'advisor']) assert.ok(schema.properties[key]?.description, key);
});
