#!/usr/bin/env node
// Runs every compiled `*.test.js` under dist/test (or under the folders given, e.g. `unit integration`).
// Node 20's --test has no globs, and given a folder it would also run the shared helpers in test/support.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = 'dist/test';
const folders = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const nodeFlags = process.argv.slice(2).filter((a) => a.startsWith('-'));

function collect(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return collect(path);
    return name.endsWith('.test.js') ? [path] : [];
  });
}

const files = (folders.length ? folders.map((f) => join(root, f)) : [root]).flatMap(collect).sort();
if (files.length === 0) {
  console.error(`no test files under ${root}; run \`npm run build\` first`);
  process.exit(1);
}
// Activation stores that several test files extract from the same prompts are shared within this run
// (test/support/mmlu-slice.ts), and removed with it.
const cache = mkdtempSync(join(tmpdir(), 'mechroute-test-cache-'));
const result = spawnSync(
  process.execPath,
  ['--enable-source-maps', '--test', '--test-concurrency=1', ...nodeFlags, ...files],
  { stdio: 'inherit', env: { ...process.env, MECHROUTE_TEST_CACHE: cache } },
);
rmSync(cache, { recursive: true, force: true });
process.exit(result.status ?? 1);
