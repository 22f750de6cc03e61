import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { MIGRATIONS } from '../../../src/state/migrations.js';
import type { AnsweredRequest } from '../../../src/state/outcome-stats.js';
import { openStateStore } from '../../../src/state/sqlite-state-store.js';

/** The store against real SQLite files in a temp dir: what survives a reopen, a crash, a second opener. */
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mechroute-state-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const answered = (
  id: string,
  answered_at: number,
  fields: Partial<AnsweredRequest> = {},
): AnsweredRequest => ({
  request_id: id,
  tier: 'cheap',
  cost_usd: 0.001,
  latency_ms: 12.5,
  escalations: 0,
  fallback: false,
  answered_at,
  ...fields,
});

describe('SQLite state store', () => {
  test('requests, outcomes, counters and the policy stack read back after a reopen', () => {
    const file = join(dir, 'nested', 'roundtrip.sqlite');
    const store = openStateStore(file);
    store.transaction(() => {
      store.addAnswered(answered('a', 1000, { policy_version: 'v1', task_class: 'STEM', fallback: true }));
      store.addAnswered(answered('b', 2000, { escalations: 2 }));
      store.addCounters([{ scope: 'tier', key: 'cheap', add: { requests: 2, cost_usd: 0.002 } }]);
    });
    store.rateAnswered('a', true, 3000);
    store.addCounters([
      { scope: 'tier', key: 'cheap', add: { feedback: 1, successes: 1 } },
      { scope: 'policy', key: 'v1', add: { feedback: 1 } },
    ]);
    store.savePolicyStack([
      { version: '2', content: { version: '2', kind: 'utility' } },
      { version: '1', content: { version: '1', kind: 'threshold' } },
    ]);
    store.close();

    const again = openStateStore(file);
    assert.deepEqual(again.findAnswered('a'), {
      ...answered('a', 1000, { policy_version: 'v1', task_class: 'STEM', fallback: true }),
      success: true,
      rated_at: 3000,
    });
    assert.deepEqual(again.findAnswered('b'), answered('b', 2000, { escalations: 2 }));
    assert.equal(again.findAnswered('nope'), undefined);
    const counters = Object.fromEntries(again.loadCounters().map((d) => [`${d.scope}:${d.key}`, d.add]));
    assert.equal(counters['tier:cheap']!.requests, 2);
    assert.equal(counters['tier:cheap']!.successes, 1);
    assert.equal(counters['policy:v1']!.feedback, 1);
    assert.deepEqual(
      again.loadPolicyStack().map((p) => p.version),
      ['2', '1'],
    );
    again.savePolicyStack([{ version: '1', content: { version: '1', kind: 'threshold' } }]);
    assert.deepEqual(again.loadPolicyStack(), [
      { version: '1', content: { version: '1', kind: 'threshold' } },
    ]);
    again.close();
    // Versions that left the stack are forgotten, not kept forever.
    const raw = new Database(file, { readonly: true });
    assert.equal(raw.prepare('SELECT count(*) FROM policies').pluck().get(), 1);
    assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    raw.close();
  });

  test('a transaction that throws writes nothing', () => {
    const store = openStateStore(join(dir, 'rollback.sqlite'));
    assert.throws(() =>
      store.transaction(() => {
        store.addAnswered(answered('x', 1));
        store.addCounters([{ scope: 'tier', key: 'cheap', add: { requests: 1 } }]);
        throw new Error('boom');
      }),
    );
    assert.equal(store.findAnswered('x'), undefined);
    assert.deepEqual(store.loadCounters(), []);
    // A repeated request id is refused, not silently merged.
    store.addAnswered(answered('y', 1));
    assert.throws(() => store.addAnswered(answered('y', 2)), /UNIQUE/);
    store.close();
  });

  test('pruning drops requests past the age limit and beyond the count limit, oldest first', () => {
    const store = openStateStore(join(dir, 'prune.sqlite'));
    for (let i = 0; i < 10; i++) store.addAnswered(answered(`r${i}`, i * 100));
    assert.equal(store.pruneAnswered(300, 100), 3); // r0..r2 are older than 300
    assert.equal(store.findAnswered('r2'), undefined);
    assert.ok(store.findAnswered('r3'));
    assert.equal(store.pruneAnswered(0, 4), 3); // keep the newest 4: r6..r9
    assert.equal(store.findAnswered('r5'), undefined);
    assert.ok(store.findAnswered('r6'));
    assert.equal(store.pruneAnswered(0, 4), 0);
    store.close();
    const empty = openStateStore(join(dir, 'prune-empty.sqlite'));
    assert.equal(empty.pruneAnswered(Date.now(), 1), 0);
    empty.close();
  });

  test('one server per file: a second opener is refused until the first closes', () => {
    const file = join(dir, 'busy.sqlite');
    const first = openStateStore(file);
    assert.throws(() => openStateStore(file), {
      code: 'MR_ERR_STATE_BUSY',
      message: /busy\.sqlite is in use/,
    });
    first.close();
    openStateStore(file).close();
  });

  test('every commit survives the process being killed before it closes the file', () => {
    const file = join(dir, 'crash.sqlite');
    const storeModule = new URL('../../../src/state/sqlite-state-store.js', import.meta.url).href;
    // A child writes 300 requests, one transaction each, and is SIGKILLed without closing anything.
    const child = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { openStateStore } = await import(${JSON.stringify(storeModule)});
         const store = openStateStore(${JSON.stringify(file)});
         for (let i = 0; i < 300; i++) {
           store.transaction(() => {
             store.addAnswered({ request_id: 'k' + i, tier: 't', cost_usd: 0.01, latency_ms: 1, escalations: 0,
               fallback: false, answered_at: i });
             store.addCounters([{ scope: 'tier', key: 't', add: { requests: 1, cost_usd: 0.01 } }]);
           });
         }
         process.kill(process.pid, 'SIGKILL');`,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(child.signal, 'SIGKILL', child.stderr);
    // The records are in the write-ahead log, not yet checkpointed into the database file.
    assert.ok(statSync(`${file}-wal`).size > 0);
    const store = openStateStore(file); // the dead process's lock went with it
    assert.ok(store.findAnswered('k0'));
    assert.ok(store.findAnswered('k299'));
    const [tier] = store.loadCounters();
    assert.equal(tier!.add.requests, 300);
    assert.ok(Math.abs(tier!.add.cost_usd! - 3) < 1e-9);
    store.close();
  });

  test('migrations: a later one applies once over existing data; a newer or foreign file is refused', async () => {
    const file = join(dir, 'migrate.sqlite');
    const v1 = openStateStore(file);
    v1.addAnswered(answered('old', 5));
    v1.close();
    const later = [
      ...MIGRATIONS,
      {
        version: MIGRATIONS.at(-1)!.version + 1,
        description: 'a table a later feature adds',
        sql: 'CREATE TABLE learned (tier TEXT PRIMARY KEY, alpha REAL, beta REAL)',
      },
    ];
    openStateStore(file, { migrations: later }).close();
    const v2 = openStateStore(file, { migrations: later }); // applied once: a second run would fail
    assert.ok(v2.findAnswered('old'));
    v2.close();
    assert.throws(() => openStateStore(file), {
      code: 'MR_ERR_STATE_TOO_NEW',
      message: new RegExp(`schema version ${later.at(-1)!.version}, written by a newer mechroute`),
    });

    const foreign = join(dir, 'foreign.sqlite');
    const other = new Database(foreign);
    other.exec('CREATE TABLE notes (text TEXT)');
    other.close();
    assert.throws(() => openStateStore(foreign), { code: 'MR_ERR_STATE_INVALID' });
    const text = join(dir, 'text.sqlite');
    await writeFile(text, 'x'.repeat(4096));
    assert.throws(() => openStateStore(text), { code: 'MR_ERR_STATE_INVALID', message: /not a mechroute/ });
  });
});
