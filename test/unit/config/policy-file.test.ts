import assert from 'node:assert/strict';
import { mkdtemp, open, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { policyFromConfigFile } from '../../../src/config/config-loader.js';
import {
  createPolicyStore,
  loadPolicyFile,
  type PolicyChange,
  type PolicyLogger,
  parsePolicy,
  watchPolicyFile,
} from '../../../src/config/policy-file.js';
import { InvalidFileError } from '../../../src/errors.js';
import type { Policy } from '../../../src/policy/policy-schema.js';
import { openStateStore } from '../../../src/state/sqlite-state-store.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mechroute-policy-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const v = (version: string, extra: Record<string, unknown> = {}): Policy =>
  parsePolicy({ version, kind: 'threshold', threshold: {}, ...extra }, 'test');

function recordingLogger(): PolicyLogger & { lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  return {
    lines,
    info: (_obj, msg = '') => lines.push({ level: 'info', msg }),
    warn: (_obj, msg = '') => lines.push({ level: 'warn', msg }),
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

    await writeFile(file, 'version: "2"\nkind: utility\nutility: {}\nthreshold: { tiers: { a: 0.7 } }\n');
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
    await writeFile(
      file,
      JSON.stringify({ utility: { lambda: 3 }, kind: 'threshold', threshold: {}, version: '5' }),
    );
    const same = await store.reload(file);
    assert.ok(same.ok && !same.changed);
    await writeFile(
      file,
      JSON.stringify({ version: '5', kind: 'threshold', threshold: {}, utility: { lambda: 4 } }),
    );
    const bumped = await store.reload(file);
    assert.match(bumped.ok ? '' : bumped.error.message, /the policy changed but its version is still "5"/);
    assert.equal(store.current().utility.lambda, 3);
  });

  test('rollback walks back through the kept versions', () => {
    const logger = recordingLogger();
    const store = createPolicyStore(v('1'), { history: 2, logger });
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
    assert.deepEqual(
      logger.lines.filter((l) => l.msg.startsWith('policy not changed')).map((l) => l.level),
      ['warn'],
      "a refused rollback is the caller's 409, not an error of the server",
    );
  });

  test('an inline policy reloads from its config file', async () => {
    const file = join(dir, 'inline.yaml');
    const config = (version: string) =>
      `tiers:\n  - { id: a, provider: local, model: m, context_window: 10 }\npolicy: { version: "${version}", kind: cascade, cascade: {}, threshold: {} }\n`;
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
    await writeFile(file, 'version: "1"\nkind: threshold\nthreshold: {}\n');
    const logger = recordingLogger();
    const store = createPolicyStore(v('1'), { logger });
    const changes: PolicyChange[] = [];
    const watcher = watchPolicyFile(file, store, logger, {
      quiet_ms: 20,
      onReload: (c) => changes.push(c),
    });
    try {
      await replaceAtomically(file, 'version: "2"\nkind: utility\nutility: {}\n');
      await until(() => store.current().version === '2', 'version 2');

      const before = changes.length;
      await replaceAtomically(file, 'version: "3"\nkind: nonsense\n');
      await until(() => changes.length > before, 'the broken file to be read');
      assert.equal(store.current().version, '2');
      assert.ok(logger.lines.some((l) => l.level === 'error'));

      await writeFile(join(dir, 'unrelated.yaml'), 'x: 1\n');
      await writeFile(file, 'version: "4"\nkind: budget\nbudget: {}\n');
      await until(() => store.current().version === '4', 'version 4');

      store.set(v('5'));
      process.emit('SIGHUP');
      await until(() => store.current().version === '4', 'SIGHUP to reload the file');
    } finally {
      watcher.close();
    }
    assert.equal(process.listenerCount('SIGHUP'), 0);
    const count = changes.length;
    await writeFile(file, 'version: "6"\nkind: budget\nbudget: {}\n');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(changes.length, count);
    assert.equal(store.current().version, '4');
  });
});

describe('a policy file must be complete', () => {
  test("a kind's own section (and a cascade's starting rule's) must be written, not defaulted", () => {
    assert.throws(
      () => parsePolicy({ version: '1', kind: 'threshold' }, 'p.yaml'),
      /threshold: missing: a policy of kind threshold must write its threshold section/,
    );
    assert.throws(
      () => parsePolicy({ version: '1', kind: 'cascade', cascade: { start: 'utility' } }, 'p.yaml'),
      /utility: missing: a policy of kind cascade must write its utility section/,
    );
    // Reported together with the schema's own complaints.
    assert.throws(
      () => parsePolicy({ version: '', kind: 'utility' }, 'p.yaml'),
      (error: Error) =>
        /version must not be empty/.test(error.message) && /utility: missing/.test(error.message),
    );
    assert.equal(parsePolicy({ version: '1', kind: 'budget', budget: {} }, 'p.yaml').kind, 'budget');
    assert.equal(
      parsePolicy({ version: '1', kind: 'cascade', cascade: {}, threshold: {} }, 'p.yaml').kind,
      'cascade',
    );
  });
});

/** Writes `chunks` into one open file, `gap_ms` apart, as a slow writer that does not rename does. */
async function writeInChunks(file: string, chunks: readonly string[], gap_ms: number): Promise<void> {
  const handle = await open(file, 'w');
  try {
    for (const [i, chunk] of chunks.entries()) {
      if (i > 0) await new Promise((r) => setTimeout(r, gap_ms));
      await handle.write(chunk);
    }
  } finally {
    await handle.close();
  }
}

describe('watchPolicyFile and torn writes', () => {
  test('a file written in bursts is read once, when it has stopped changing', async () => {
    const file = join(dir, 'bursts.yaml');
    await writeFile(file, 'version: "1"\nkind: threshold\nthreshold: {}\n');
    const logger = recordingLogger();
    const reads: string[] = [];
    const store = createPolicyStore(v('1'), {
      logger,
      load: async (f) => {
        const policy = await loadPolicyFile(f);
        reads.push(JSON.stringify(policy.threshold));
        return policy;
      },
    });
    const watcher = watchPolicyFile(file, store, logger, { sighup: false }); // the default quiet time
    try {
      // Every prefix of this file is a complete, valid policy: only waiting for the file to settle
      // tells the first chunk from the whole.
      await writeInChunks(
        file,
        [
          'version: "2"\nkind: threshold\nthreshold:\n  default: 0.7\n',
          '  tiers:\n    a: 0.8\n',
          '    b: 0.9\n',
          'output_tokens:\n  default: 64\n',
        ],
        300,
      );
      await until(() => store.current().version === '2', 'version 2', 10_000);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(store.current().threshold.tiers, { a: 0.8, b: 0.9 });
      assert.equal(store.current().output_tokens.default, 64);
      assert.equal(reads.length, 1, `read ${reads.length} times: ${reads.join(' | ')}`);
      assert.ok(!logger.lines.some((l) => l.level === 'error'), JSON.stringify(logger.lines));
    } finally {
      watcher.close();
    }
  });

  test('a torn file missing its section is refused, and the complete write that follows is installed', async () => {
    const file = join(dir, 'torn.yaml');
    await writeFile(file, 'version: "1"\nkind: threshold\nthreshold: { default: 0.5 }\n');
    const logger = recordingLogger();
    const store = createPolicyStore(v('1', { threshold: { default: 0.5 } }), { logger });
    const changes: PolicyChange[] = [];
    // A short quiet time and a long pause mid-write: the torn half is read, as a stalled writer's would be.
    const watcher = watchPolicyFile(file, store, logger, {
      quiet_ms: 50,
      sighup: false,
      onReload: (c) => changes.push(c),
    });
    try {
      await writeInChunks(file, ['version: "2"\nkind: threshold\n', 'threshold:\n  default: 0.9\n'], 600);
      await until(() => store.current().version === '2', 'version 2', 10_000);
      assert.equal(store.current().threshold.default, 0.9);
      const installed = changes.filter((c) => c.ok && c.changed);
      assert.equal(installed.length, 1);
      const refused = changes.filter((c) => !c.ok);
      assert.ok(refused.length >= 1, 'the torn half was read and refused');
      assert.match(refused[0]!.ok ? '' : refused[0]!.error.message, /threshold: missing/);
    } finally {
      watcher.close();
    }
  });

  test('a SIGHUP reload of an invalid file keeps the running policy', async () => {
    const file = join(dir, 'hup.yaml');
    await writeFile(file, 'version: "7"\nkind: utility\n');
    const logger = recordingLogger();
    const store = createPolicyStore(v('6'), { logger });
    const changes: PolicyChange[] = [];
    const watcher = watchPolicyFile(file, store, logger, { quiet_ms: 20, onReload: (c) => changes.push(c) });
    try {
      process.emit('SIGHUP');
      await until(() => changes.length > 0, 'the SIGHUP reload');
      assert.equal(changes[0]!.ok, false);
      assert.equal(store.current().version, '6');
      assert.match(logger.lines.at(-1)!.msg, /policy not changed: keeping version 6/);
      await writeFile(file, 'version: "7"\nkind: utility\nutility: { lambda: 2 }\n');
      await until(() => store.current().version === '7', 'the fixed file');
    } finally {
      watcher.close();
    }
  });
});

describe('policy history in the state file', () => {
  test('a restart resumes the history; a reload before it can be rolled back after it', () => {
    const file = join(dir, 'history.sqlite');
    let state = openStateStore(file);
    const first = createPolicyStore(v('1'), { persist: state });
    assert.ok(first.set(v('2', { threshold: { default: 0.7 } })).ok);
    state.close();

    // The config still names version 1 (the reload came from a file the config does not name) ...
    state = openStateStore(file);
    const logger = recordingLogger();
    const second = createPolicyStore(v('2', { threshold: { default: 0.7 } }), { persist: state, logger });
    assert.equal(second.current().version, '2');
    assert.deepEqual(
      second.history().map((p) => p.version),
      ['1'],
    );
    const back = second.rollback();
    assert.ok(back.ok && back.policy.version === '1' && back.previous_version === '2');
    state.close();

    // ... a config naming a new version puts it on top of the stored history.
    state = openStateStore(file);
    const third = createPolicyStore(v('3'), { persist: state, logger, history: 1 });
    assert.equal(third.current().version, '3');
    assert.deepEqual(
      third.history().map((p) => p.version),
      ['1'],
    );
    assert.match(logger.lines.at(-1)!.msg, /version 3 from the config replaces version 1 of the state file/);
    state.close();
  });

  test('a version the history holds with other content is refused, at start and on reload', () => {
    const state = openStateStore(join(dir, 'clash.sqlite'));
    const store = createPolicyStore(v('1'), { persist: state });
    store.set(v('2'));
    const reused = store.set(v('1', { threshold: { default: 0.9 } }));
    assert.match(
      reused.ok ? '' : reused.error.message,
      /"1" is the version of another policy kept for rollback/,
    );
    // The same content under a kept version is that policy again: installed.
    assert.ok(store.set(v('1')).ok);
    assert.equal(store.current().version, '1');
    assert.throws(
      () => createPolicyStore(v('2', { threshold: { default: 0.1 } }), { persist: state, source: 'p.yaml' }),
      /invalid policy p\.yaml:[\s\S]*"2" is the version of another policy kept for rollback.*state file/,
    );
    state.close();
  });

  test('stored policies naming a tier the config dropped are left out of the history', () => {
    const state = openStateStore(join(dir, 'dropped.sqlite'));
    createPolicyStore(v('1', { threshold: { tiers: { gone: 0.5 } } }), { persist: state }).set(v('2'));
    const logger = recordingLogger();
    const store = createPolicyStore(v('2'), { persist: state, logger, knownTiers: ['a'] });
    assert.deepEqual(store.history(), []);
    assert.match(logger.lines[0]!.msg, /stored policy version 1 left out of the history/);
    assert.deepEqual(
      state.loadPolicyStack().map((p) => p.version),
      ['2'],
    );
    state.close();
  });

  test('a history write that fails changes nothing', () => {
    const state = openStateStore(join(dir, 'closed.sqlite'));
    const store = createPolicyStore(v('1'), { persist: state });
    store.set(v('2'));
    state.close();
    const change = store.set(v('3'));
    assert.equal(change.ok, false);
    assert.match(change.ok ? '' : change.error.message, /the policy history could not be saved/);
    assert.equal(store.rollback().ok, false);
    assert.equal(store.current().version, '2');
  });
});

describe('policy store: a config reload changes the tiers', () => {
  test('retier validates against the new tiers, adopts them, and reports every change', () => {
    const changes: string[] = [];
    const store = createPolicyStore(v('1'), {
      knownTiers: ['a', 'b'],
      onChange: ({ from, to, via }) => changes.push(`${via} ${from}→${to}`),
    });
    const namesC = v('2', { threshold: { default: 0.5, tiers: { c: 0.7 } } });
    assert.equal(store.set(namesC).ok, false, 'c is not a tier yet');
    const change = store.retier(namesC, ['a', 'b', 'c'], 'config.yaml');
    assert.ok(change.ok && change.changed);
    // The known tiers are now the reloaded ones: a policy naming b (removed) is refused.
    const namesB = v('3', { threshold: { default: 0.5, tiers: { b: 0.7 } } });
    assert.equal(store.retier(namesB, ['a', 'c'], 'config.yaml').ok, false);
    assert.equal(store.current().version, '2');
    assert.ok(store.retier(v('2', { threshold: { default: 0.5, tiers: { c: 0.7 } } }), ['a', 'c'], 'x').ok);
    // Version 1 names no removed tier and may be rolled back to.
    assert.ok(store.rollback().ok);
    assert.deepEqual(changes, ['install 1→2', 'rollback 2→1']);
  });

  test('rollback refuses a kept policy that names a tier a reload removed', () => {
    const store = createPolicyStore(v('1', { threshold: { default: 0.5, tiers: { b: 0.6 } } }), {
      knownTiers: ['a', 'b'],
    });
    assert.ok(store.retier(v('2'), ['a'], 'config.yaml').ok);
    const back = store.rollback();
    assert.equal(back.ok, false);
    assert.match(back.ok ? '' : back.error.message, /unknown tier "b"[\s\S]*a config reload removed/);
    assert.equal(store.current().version, '2');
  });
});
