import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Command } from 'commander';
import { parse } from 'yaml';
import { registerConfigCommand } from '../../../src/cli/commands/config.js';
import { DEFAULT_CONFIG_PATH } from '../../../src/config/config-loader.js';

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

  test('schema prints a JSON Schema that the default config satisfies and typos fail', async () => {
    const schema = JSON.parse((await run('schema')).out) as Record<string, unknown>;
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    const validate = new Ajv2020({ strict: false, validateFormats: false }).compile(schema);
    const config = parse(readFileSync(DEFAULT_CONFIG_PATH, 'utf8')) as Record<string, unknown>;
    assert.ok(validate(config), JSON.stringify(validate.errors));
    assert.equal(validate({ ...config, sever: {} }), false);
  });
});
