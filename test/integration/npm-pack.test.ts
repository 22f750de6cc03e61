import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { packageRoot } from '../../src/paths.js';
import { tempHome } from '../support/temp-home.js';

const run = promisify(execFile);

/**
 * The package as npm publishes it (issue 15 #6): `npm pack`, unpacked into a fresh project's
 * node_modules as `npm install` lays it out, its install script run there (the native addon built from
 * the shipped sources), then its CLI. The dependencies are this checkout's, linked beside it as npm would
 * hoist them, so the test checks what the tarball holds — the thing a missing `files` entry breaks —
 * without a second download and compile of every dependency.
 */
describe('the packed package', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let installed: string;
  const cli = (...args: string[]) =>
    run('node', [join(installed, 'bin', 'mechroute.js'), ...args], { env, cwd: dir, maxBuffer: 1 << 24 });

  before(async () => {
    ({ dir, env } = await tempHome('mechroute-pack-'));
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
      cwd: packageRoot,
      maxBuffer: 1 << 26,
    });
    const [packed] = JSON.parse(stdout) as { filename: string }[];
    const modules = join(dir, 'app', 'node_modules');
    installed = join(modules, 'mechroute');
    await mkdir(installed, { recursive: true });
    await run('tar', ['-xzf', join(dir, packed!.filename), '-C', installed, '--strip-components=1']);
    for (const name of await readdir(join(packageRoot, 'node_modules'))) {
      if (name.startsWith('.')) continue;
      await symlink(join(packageRoot, 'node_modules', name), join(modules, name));
    }
    const manifest = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const [command, ...args] = manifest.scripts.install!.split(' ');
    await run(command!, args, { cwd: installed, env });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('ships no tests, benchmarks or build leftovers', async () => {
    const { stdout } = await run('tar', [
      '-tzf',
      join(dir, (await readdir(dir)).find((f) => f.endsWith('.tgz'))!),
    ]);
    const paths = stdout.split('\n').filter(Boolean);
    assert.ok(paths.includes('package/dist/src/cli/main.js'), 'the CLI');
    assert.ok(paths.includes('package/native/activations.cc'), 'the addon source');
    const stray = paths.filter((p) =>
      /^package\/(dist\/(test|bench)|native\/build|native\/vendor|test|bench)\//.test(p),
    );
    assert.deepEqual(stray, []);
  });

  it('runs mechroute --help and --version', async () => {
    const help = await cli('--help');
    assert.match(help.stdout, /Usage: mechroute/);
    for (const command of ['serve', 'train', 'eval', 'bench', 'encode', 'label']) {
      assert.match(help.stdout, new RegExp(`\\n  ${command}\\b`), command);
    }
    const version = await cli('--version');
    const { version: expected } = JSON.parse(await readFile(join(packageRoot, 'package.json'), 'utf8'));
    assert.equal(version.stdout.trim(), expected);
  });

  it('runs bench --help, which loads the fitting code', async () => {
    const { stdout } = await cli('bench', '--help');
    assert.match(stdout, /routing/);
    const routing = await cli('bench', 'routing', '--help');
    assert.match(routing.stdout, /--train/);
  });

  it('encodes with the addon it built: encode --demo on the real encoder', async () => {
    const { stdout } = await cli('encode', '--demo');
    assert.match(stdout, /encoder: gemma3 270M/);
    assert.match(stdout, /cosine/i);
  });
});
