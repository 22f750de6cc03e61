import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import { registerModelsCommand } from '../../../src/cli/commands/models.js';
import { ModelNotFoundError } from '../../../src/errors.js';
import { DEFAULT_ENCODER_MODEL } from '../../../src/models/manifest.js';
import { createManifestRegistry } from '../../../src/models/manifest-registry.js';

let home: string;
const savedHome = process.env.MECHROUTE_HOME;
before(() => {
  home = mkdtempSync(join(tmpdir(), 'mechroute-cli-'));
  process.env.MECHROUTE_HOME = home;
});
after(() => {
  if (savedHome === undefined) delete process.env.MECHROUTE_HOME;
  else process.env.MECHROUTE_HOME = savedHome;
  rmSync(home, { recursive: true, force: true });
});

async function run(...args: string[]): Promise<string> {
  let out = '';
  // Output hooks are copied to subcommands when they are created, so configure before registering.
  const program = new Command().exitOverride().configureOutput({ writeOut: (s) => (out += s) });
  registerModelsCommand(program);
  await program.parseAsync(['models', ...args], { from: 'user' });
  return out;
}

describe('mechroute models', () => {
  test('list shows the default encoder, not cached in an empty $MECHROUTE_HOME', async () => {
    const rows = JSON.parse(await run('list', '--json')) as {
      name: string;
      cached: boolean;
      default: boolean;
    }[];
    const row = rows.find((r) => r.name === DEFAULT_ENCODER_MODEL);
    assert.ok(row?.default);
    assert.equal(row.cached, false);
    assert.match(
      await run('list'),
      /^NAME\s+SIZE\s+ARCH\s+LAYERS\s+WIDTH\s+CACHED\n(?:.*\n)*.*\(default\).*gemma3\s+18\s+640\s+no$/m,
    );
  });

  test('info prints every manifest field, the cache path and the sources', async () => {
    const info = JSON.parse(await run('info', DEFAULT_ENCODER_MODEL, '--json')) as Record<string, unknown>;
    const manifest = createManifestRegistry().get(DEFAULT_ENCODER_MODEL);
    for (const [key, value] of Object.entries(manifest)) assert.deepEqual(info[key], value, key);
    assert.equal(info.path, join(home, 'models', manifest.file));
    assert.equal(info.cached, false);
    assert.match(await run('info', DEFAULT_ENCODER_MODEL), /sources \(tried in order\):\n {2}1\. hf hf:/);
  });

  test('pull --if-missing is a no-op when a file of the right size is present', async () => {
    const manifest = createManifestRegistry().get(DEFAULT_ENCODER_MODEL);
    mkdirSync(join(home, 'models'), { recursive: true });
    // Sparse: the right size without writing 250 MB; --if-missing trusts the size by design.
    const fd = openSync(join(home, 'models', manifest.file), 'w');
    ftruncateSync(fd, manifest.size);
    closeSync(fd);
    assert.equal(await run('pull', '--if-missing'), '');
    assert.deepEqual(JSON.parse(await run('pull', '--if-missing', '--json')).status, 'present');
    assert.match(await run('list'), /\(default\).*yes$/m);
  });

  test('an unknown model is a ModelNotFoundError', async () => {
    await assert.rejects(run('info', 'no-such-model'), ModelNotFoundError);
    await assert.rejects(run('pull', 'no-such-model'), ModelNotFoundError);
  });
});
