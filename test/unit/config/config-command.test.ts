import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Command } from 'commander';
import { parse } from 'yaml';
import { calibrate } from '../../../src/calibration/calibrate.js';
import { buildCalibratedPolicy, policyYaml } from '../../../src/calibration/calibrated-policy.js';
import { registerConfigCommand } from '../../../src/cli/commands/config.js';
import { DEFAULT_CONFIG_PATH, DEFAULT_PROBES_PATH } from '../../../src/config/config-loader.js';
import { packageRoot } from '../../../src/paths.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mechroute-config-cli-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
  process.exitCode = 0;
});

async function run(...args: string[]): Promise<{ out: string; exitCode: number }> {
  let out = '';
  const program = new Command().exitOverride().configureOutput({ writeOut: (s) => (out += s) });
  registerConfigCommand(program);
  process.exitCode = 0;
  await program.parseAsync(['config', ...args], { from: 'user' });
  const exitCode = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { out, exitCode };
}

describe('mechroute config', () => {
  test('check passes the default config and reports tier availability', async () => {
    const saved = process.env.OPENAI_API_KEY;
    delete process.env.OPENAI_API_KEY;
    try {
      const { out, exitCode } = await run('check', DEFAULT_CONFIG_PATH);
      assert.equal(exitCode, 0, out);
      assert.match(out, /^config .*default\.yaml is valid$/m);
      assert.match(out, /^policy: threshold, version 1 \(inline\), on_unavailable: error$/m);
      assert.match(out, /gemma-3-270m\s+local\s+\$0\/\$0 per Mtok\s+available/);
      assert.match(
        out,
        /gpt-4-1106-preview\s+openai\s+\$10\/\$30 per Mtok\s+unavailable: OPENAI_API_KEY is not set/,
      );
      const json = JSON.parse((await run('check', DEFAULT_CONFIG_PATH, '--json')).out) as { valid: boolean };
      assert.equal(json.valid, true);
    } finally {
      if (saved !== undefined) process.env.OPENAI_API_KEY = saved;
    }
  });

  test('check passes the shipped RouterBench config with its 8-tier bundle', async () => {
    const { out, exitCode } = await run('check', join(packageRoot, 'config', 'routerbench.yaml'), '--json');
    assert.equal(exitCode, 0, out);
    const json = JSON.parse(out) as { valid: boolean };
    assert.equal(json.valid, true, out);
    const text = (await run('check', join(packageRoot, 'config', 'routerbench.yaml'))).out;
    assert.match(text, /probes\.path\s+ok\s+.*routerbench\.json: 8 tier probes/);
    assert.match(text, /^policy: utility, version routerbench-1 \(inline\)/m);
  });

  test('check explains every error with its path and exits 1', async () => {
    const file = join(dir, 'broken.yaml');
    await writeFile(
      file,
      'server: { host: 0.0.0.0, port: "80" }\ntiers:\n  - { id: a, provider: openai, model: m, price: { input_per_mtok: 1 }, context_window: 1, deployments: [] }\n',
    );
    const { out, exitCode } = await run('check', file);
    assert.equal(exitCode, 1);
    assert.match(out, /^invalid config .*broken\.yaml:$/m);
    assert.match(out, /^ {2}- server\.port: Invalid input: expected number, received string$/m);
    assert.match(
      out,
      /^ {2}- tiers\.0\.price\.output_per_mtok: Invalid input: expected number, received undefined$/m,
    );
    assert.match(out, /^ {2}- tiers\.0\.deployments: Too small/m);
    const json = JSON.parse((await run('check', file, '--json')).out) as { valid: boolean; errors: string[] };
    assert.equal(json.valid, false);
    assert.equal(json.errors.length, 3);
    assert.equal((await run('check', join(dir, 'absent.yaml'))).exitCode, 1);
  });

  test('check warns about an exposed host without auth', async () => {
    const file = join(dir, 'open.json');
    await writeFile(
      file,
      JSON.stringify({
        server: { host: '0.0.0.0' },
        tiers: [{ id: 'a', provider: 'local', model: 'm', context_window: 1 }],
      }),
    );
    const { out, exitCode } = await run('check', file);
    assert.equal(exitCode, 0);
    assert.match(out, /server\.host is 0\.0\.0\.0 with no server\.auth_tokens_env/);
  });

  test('check loads every file a config names, paths resolved from the config file as serve does', async () => {
    const sub = join(dir, 'conf');
    await mkdir(sub, { recursive: true });
    // A request-level bundle where a step bundle belongs, a probe path that does not exist, and a
    // text-classifier model that is not one: each is an error with its key, and the exit code is 1.
    const bad = join(sub, 'bad.yaml');
    await writeFile(
      bad,
      [
        'probes: { path: ../no-such-bundle.json }',
        `steps: { probes: ${JSON.stringify(relative(sub, DEFAULT_PROBES_PATH))} }`,
        `text_embedding: { model: ${JSON.stringify(relative(sub, join(packageRoot, 'package.json')))} }`,
        'tiers:',
        '  - { id: gemma-3-270m, provider: local, model: gemma-3-270m-q4_k_m, context_window: 8192 }',
        '  - { id: mixtral-8x7b-instruct, provider: local, model: not-a-model, context_window: 8192 }',
      ].join('\n'),
    );
    const { out, exitCode } = await run('check', bad);
    assert.equal(exitCode, 1, out);
    assert.match(out, /is valid, but 3 files it names cannot be used \(serve would not start\):$/m);
    assert.match(out, new RegExp(`probes\\.path +ERROR +${join(dir, 'no-such-bundle.json')}: cannot read`));
    assert.match(out, /steps\.probes +ERROR .*steps: missing; this is a request-level bundle/);
    assert.match(out, /text_embedding\.model +ERROR .*package\.json: invalid baseline model/);
    assert.match(out, /encoder\.model +ok +gemma-3-270m-q4_k_m: cached at /);
    assert.match(out, /tier mixtral-8x7b-instruct will be unavailable: unknown model "not-a-model"/);
    const json = JSON.parse((await run('check', bad, '--json')).out) as {
      valid: boolean;
      files: { key: string; ok: boolean }[];
    };
    assert.equal(json.valid, false);
    assert.deepEqual(
      json.files.map((f) => [f.key, f.ok]),
      [
        ['encoder.model', true],
        ['probes.path', false],
        ['steps.probes', false],
        ['text_embedding.model', false],
      ],
    );

    // The shipped bundles, named relative to the config's folder, load.
    const good = join(sub, 'good.yaml');
    await writeFile(
      good,
      [
        `probes: { path: ${JSON.stringify(relative(sub, DEFAULT_PROBES_PATH))} }`,
        `steps: { probes: ${JSON.stringify(relative(sub, join(packageRoot, 'probes', 'default-steps.json')))}, probe_tier: mixtral-8x7b-instruct }`,
        'tiers:',
        '  - { id: gemma-3-270m, provider: local, model: gemma-3-270m-q4_k_m, context_window: 8192 }',
        '  - { id: mixtral-8x7b-instruct, provider: local, model: gemma-3-270m-q4_k_m, context_window: 8192 }',
      ].join('\n'),
    );
    const ok = await run('check', good);
    assert.equal(ok.exitCode, 0, ok.out);
    assert.match(
      ok.out,
      /probes\.path +ok +.*default\.json: 3 tier probes \(gemma-3-270m, mixtral-8x7b-instruct, gpt-4-1106-preview\)/,
    );
    assert.match(
      ok.out,
      /steps\.probes +ok +.*default-steps\.json: step bundle, .*reads the mixtral-8x7b-instruct probe/,
    );
  });

  test('check accepts a calibrated policy file on its own, as its header says', async () => {
    const p = Array.from({ length: 400 }, (_, i) => (i + 0.5) / 400);
    const pooled = calibrate(
      {
        tiers: ['weak', 'strong'],
        p: [p, p.map(() => 0.9)],
        correct: [p.map((v, i) => v > ((i * 7919) % 400) / 400), p.map((_, i) => i % 10 !== 0)],
        cost: [p.map(() => 1), p.map(() => 20)],
      },
      { target: 0.9, bootstrap: { resamples: 50, seed: 1, confidence: 0.95 } },
    );
    const policy = buildCalibratedPolicy(pooled, undefined, {
      date: new Date('2026-11-28T00:00:00Z'),
      traces: { file: 'golden.jsonl', sha256: 'c'.repeat(64), n: 400 },
      probes: { file: 'p.json', sha256: 'd'.repeat(64) },
      bootstrap: { resamples: 50, seed: 1, confidence: 0.95 },
      costs: { tokenizer: 'test', output_tokens: {}, prices: {} },
    });
    const file = join(dir, 'calibrated.yaml');
    const text = policyYaml(policy);
    assert.match(text, /validate with `mechroute config check`/);
    await writeFile(file, text);
    const { out, exitCode } = await run('check', file);
    assert.equal(exitCode, 0, out);
    assert.match(out, /^policy file .*calibrated\.yaml is valid$/m);
    assert.match(out, /^policy: threshold, version \S+ \(this file\)/m);
    assert.match(out, /^calibrated: 2026-11-28T00:00:00\.000Z, target 0\.9 × frontier quality/m);
    assert.match(out, /^tiers it names: weak$/m);
    // A broken policy file is reported as a policy, with its paths.
    await writeFile(file, text.replace('kind: threshold', 'kind: thresh'));
    const broken = await run('check', file);
    assert.equal(broken.exitCode, 1);
    assert.match(broken.out, /^invalid policy .*calibrated\.yaml:$/m);
  });

  test('schema prints a JSON Schema that the default config satisfies and typos fail', async () => {
    const schema = JSON.parse((await run('schema')).out) as Record<string, unknown>;
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    const validate = new Ajv2020({ strict: false, validateFormats: false }).compile(schema);
    const config = parse(readFileSync(DEFAULT_CONFIG_PATH, 'utf8')) as Record<string, unknown>;
    assert.ok(validate(config), JSON.stringify(validate.errors));
    assert.equal(validate({ ...config, sever: {} }), false);
  });
});
