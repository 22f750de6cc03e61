import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { packageRoot } from '../../src/paths.js';
import { MMLU_SLICE_STORE, mmluLinesBySubject, sharedStoreDir } from '../support/mmlu-slice.js';
import { tempHome } from '../support/temp-home.js';

const run = promisify(execFile);
const CLI = join(packageRoot, 'bin', 'mechroute.js');
const TIERS = ['mixtral-8x7b-instruct', 'gpt-4-1106-preview'];

/**
 * The real pipeline on a little real data: 60 MMLU traces (the 6 shortest questions of each of 10
 * subjects, so whole-subject folds exist) are extracted with the real encoder into a store (in a whole
 * run of the suite, the one bench-routing's slice already filled: then `extract` finds them cached),
 * trained on, and evaluated through the CLI — plus 4 traces of a subject no test extracts, which `eval`
 * must encode itself. The numbers are meaningless at this size; the test checks the plumbing and the ranges.
 */
async function writeSample(file: string, extraFile: string): Promise<void> {
  const subjects = await mmluLinesBySubject();
  const sample = subjects.slice(0, 10).flatMap((list) => list.slice(0, 6));
  const extra = subjects[30]!.slice(0, 4);
  await writeFile(file, `${sample.join('\n')}\n`);
  await writeFile(extraFile, `${[...sample, ...extra].join('\n')}\n`);
}

describe('mechroute train and eval with the real encoder', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let traces: string;
  let withUnextracted: string;
  let bundle: string;
  let store: string;

  before(async () => {
    ({ dir, env } = await tempHome('mechroute-train-eval-'));
    traces = join(dir, 'sample.jsonl');
    withUnextracted = join(dir, 'sample-plus-4.jsonl');
    bundle = join(dir, 'probes.json');
    store = sharedStoreDir(MMLU_SLICE_STORE, join(dir, 'store'));
    await writeSample(traces, withUnextracted);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('extracts, trains a bundle with both splits, and evaluates it with --json', async () => {
    await run('node', [CLI, 'extract', '--traces', traces, '--batch', '8', '--store', store], { env });
    const trained = await run(
      'node',
      [CLI, 'train', '--traces', traces, '--store', store, '--out', bundle, '--json', '--layer-rows', '200'],
      { env, maxBuffer: 64 << 20 },
    );
    const report = JSON.parse(trained.stdout);
    assert.equal(report.rows, 60);
    assert.equal(report.missing_activations, 0);
    assert.deepEqual(
      report.tiers.map((t: { id: string }) => t.id),
      TIERS,
    );
    assert.equal(report.layer_table.length, 19 + 17);
    assert.ok(report.splits.random && report.splits.group, 'both splits');
    assert.ok(report.splits.group.baselines['subject-prior']);

    const evaluated = await run(
      'node',
      [CLI, 'eval', '--probes', bundle, '--traces', withUnextracted, '--store', store, '--json'],
      {
        env,
      },
    );
    const result = JSON.parse(evaluated.stdout);
    assert.equal(result.n, 64);
    assert.deepEqual(result.features.encoded, 4);
    // Progress while it encodes them (a line per step in a log, a bar on a terminal).
    assert.match(evaluated.stderr, /^eval: encoding prompts not in the store: 4\/4 \(100 %\)/m);
    const inUnit = (v: unknown) => typeof v === 'number' && v >= 0 && v <= 1;
    for (const key of ['auroc', 'brier', 'ece']) {
      assert.deepEqual(Object.keys(result[key]).sort(), [...TIERS].sort(), key);
      for (const tier of TIERS) assert.ok(inUnit(result[key][tier]), `${key} ${tier}: ${result[key][tier]}`);
    }
    for (const key of ['cpt50', 'cpt80', 'cost_saving'])
      assert.ok(inUnit(result[key]), `${key}: ${result[key]}`);
    assert.ok(typeof result.apgr === 'number' && result.apgr > -1 && result.apgr < 2, `apgr ${result.apgr}`);
    assert.ok(
      typeof result.oracle_gap_closed === 'number' && result.oracle_gap_closed <= 1,
      `oracle_gap_closed ${result.oracle_gap_closed}`,
    );
    assert.ok(result.cost_per_correct > 0);
  });

  it('refuses a bundle made for another encoder with a clear error', async () => {
    const other = join(dir, 'other-encoder.json');
    const json = JSON.parse(await readFile(bundle, 'utf8'));
    json.encoder.sha256 = 'b'.repeat(64);
    await writeFile(other, JSON.stringify(json));
    const failed = await run(
      'node',
      [CLI, 'eval', '--probes', other, '--traces', traces, '--store', store, '--json'],
      {
        env,
      },
    ).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(failed?.code, 1);
    assert.match(failed.stderr, /MR_ERR_PROBE_ENCODER_MISMATCH/);
  });
});
