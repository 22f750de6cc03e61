import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { policyFromConfigFile } from '../../../src/config/config-loader.js';
import {
  createPolicyStore,
  type PolicyChange,
  type PolicyLogger,
  parsePolicy,
  watchPolicyFile,
} from '../../../src/config/policy-file.js';
import { InvalidFileError } from '../../../src/errors.js';
import type { Policy } from '../../../src/policy/policy-schema.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mechroute-policy-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const v = (version: string, extra: Record<string, unknown> = {}): Policy =>
  parsePolicy({ version, kind: 'threshold', ...extra }, 'test');

function recordingLogger(): PolicyLogger & { lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  return {
    lines,
    info: (_obj, msg = '') => lines.push({ level: 'info', msg }),
    error: (_obj, msg = '') => lines.push({ level: 'error', msg }),
  };
}

/** Writes beside the target and renames over it, as editors and deploy tools do. */
async function replaceAtomically(file: string, text: string): Promise<void> {
  const temporary = `${file}.tmp-${process.hrtime.bigint()}`;
  await writeFile(temporary, text);
  await rename(temporary, file);
}

async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('policy store', () => {
  test('a broken file is rejected and logged, the running policy stays; a good one is taken', async () => {
    const file = join(dir, 'reload.yaml');
    const logger = recordingLogger();
    const store = createPolicyStore(v('1'), { logger, knownTiers: ['a', 'b'] });

    await writeFile(file, 'version: "2"\nkind: threshold\nthreshold: { default: 1.5 }\n');
    const broken = await store.reload(file);
    assert.equal(broken.ok, false);
    assert.ok(!broken.ok && broken.error instanceof InvalidFileError);
    assert.match(broken.ok ? '' : broken.error.message, /threshold\.default: Too big/);
    assert.equal(store.current().version, '1');
    assert.match(logger.lines.at(-1)!.msg, /policy not changed: keeping version 1/);

    await writeFile(file, 'version: "2"\nkind: threshold\nthreshold: { tiers: { c: 0.5 } }\n');
    assert.match(((await store.reload(file)) as { error: Error }).error.message, /unknown tier "c"/);
    assert.equal((await store.reload(join(dir, 'missing.yaml'))).ok, false);
    await writeFile(file, 'version: "2"\nkind: [');
    assert.equal((await store.reload(file)).ok, false);
    assert.equal(store.current().version, '1');

    await writeFile(file, 'version: "2"\nkind: utility\nthreshold: { tiers: { a: 0.7 } }\n');
    const good = await store.reload(file);
    assert.deepEqual(
      good.ok && { changed: good.changed, previous: good.previous_version, kind: good.policy.kind },
      { changed: true, previous: '1', kind: 'utility' },
    );
    assert.equal(store.current().version, '2');
    assert.match(logger.lines.at(-1)!.msg, /policy version 2 installed/);
  });

  test('the same content is a no-op; changed content under the same version is refused', async () => {
    const file = join(dir, 'same.json');
    const store = createPolicyStore(v('5', { utility: { lambda: 3 } }));
    await writeFile(file, JSON.stringify({ utility: { lambda: 3 }, kind: 'threshold', version: '5' }));
    const same = await store.reload(file);
    assert.ok(same.ok && !same.changed);
    await writeFile(file, JSON.stringify({ version: '5', kind: 'threshold', utility: { lambda: 4 } }));
    const bumped = await store.reload(file);
    assert.match(bumped.ok ? '' : bumped.error.message, /the policy changed but its version is still "5"/);
    assert.equal(store.current().utility.lambda, 3);
  });

  test('rollback walks back through the kept versions', () => {
    const store = createPolicyStore(v('1'), { history: 2 });
    for (const version of ['2', '3', '4']) assert.ok(store.set(v(version)).ok);
    assert.deepEqual(
      store.history().map((p) => p.version),
      ['3', '2'],
    );
    assert.equal((store.rollback() as { policy: Policy }).policy.version, '3');
    assert.equal(store.rollback().policy.version, '2');
    assert.equal(store.current().version, '2');
    const none = store.rollback();
    assert.equal(none.ok, false);
    assert.equal(none.policy.version, '2');
  });

  test('an inline policy reloads from its config file', async () => {
    const file = join(dir, 'inline.yaml');
    const config = (version: string) =>
      `tiers:\n  - { id: a, provider: local, model: m, context_window: 10 }\npolicy: { version: "${version}", kind: cascade }\n`;
    await writeFile(file, config('1'));
    const store = createPolicyStore(await policyFromConfigFile(file), { load: policyFromConfigFile });
    await writeFile(file, config('2'));
    assert.equal((await store.reload(file)).policy.kind, 'cascade');
    assert.equal(store.current().version, '2');
  });
});

describe('watchPolicyFile', () => {
  test('reloads on atomic replacement and on SIGHUP, keeps the policy on a broken file, stops on close', async () => {
    const file = join(dir, 'watched.yaml');
    await writeFile(file, 'version: "1"\nkind: threshold\n');
    const logger = recordingLogger();
    const store = createPolicyStore(v('1'), { logger });
    const changes: PolicyChange[] = [];
    const watcher = watchPolicyFile(file, store, logger, {
      debounce_ms: 20,
      onReload: (c) => changes.push(c),
    });
    try {
      await replaceAtomically(file, 'version: "2"\nkind: utility\n');
      await until(() => store.current().version === '2', 'version 2');

      const before = changes.length;
      await replaceAtomically(file, 'version: "3"\nkind: nonsense\n');
      await until(() => changes.length > before, 'the broken file to be read');
      assert.equal(store.current().version, '2');
      assert.ok(logger.lines.some((l) => l.level === 'error'));

      await writeFile(join(dir, 'unrelated.yaml'), 'x: 1\n');
      await writeFile(file, 'version: "4"\nkind: budget\n');
      await until(() => store.current().version === '4', 'version 4');

      store.set(v('5'));
      process.emit('SIGHUP');
      await until(() => store.current().version === '4', 'SIGHUP to reload the file');
    } finally {
      watcher.close();
    }
    assert.equal(process.listenerCount('SIGHUP'), 0);
    const count = changes.length;
    await writeFile(file, 'version: "6"\nkind: budget\n');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(changes.length, count);
    assert.equal(store.current().version, '4');
  });
});
