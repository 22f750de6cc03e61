import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { BASELINE_METHODS, loadBaselineModel } from '../../src/baselines/baseline-model.js';
import { baselineScorer } from '../../src/baselines/tier-scorer.js';
import { packageRoot } from '../../src/paths.js';
import { BENCH_METHODS } from '../../training/bench-routing.js';
import { MMLU_SLICE_STORE, mmluLinesBySubject, sharedStoreDir } from '../support/mmlu-slice.js';
import { tempHome } from '../support/temp-home.js';

const run = promisify(execFile);
const CLI = join(packageRoot, 'bin', 'mechroute.js');
/**
 * The 6 shortest questions of each of the first 20 subjects: 120 real traces, whole subjects to hold out
 * (train-eval's 60 are among them, so one run of the suite extracts them once).
 */
async function writeSlice(file: string): Promise<void> {
  const lines = (await mmluLinesBySubject()).slice(0, 20).flatMap((subject) => subject.slice(0, 6));
  await writeFile(file, `${lines.join('\n')}\n`);
}

const EVAL_FIELDS = [
  'n',
  'auroc',
  'brier',
  'ece',
  'apgr',
  'cpt50',
  'cpt80',
  'oracle_gap_closed',
  'cost_saving',
];

/**
 * `traces split` + `bench routing --extract` end to end on a 120-record slice, with the real encoder
 * (activations extracted into a store of the test's) and the real ONNX sentence encoder.
 */
describe('mechroute bench routing on a 120-record slice', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let store: string;
  before(async () => {
    ({ dir, env } = await tempHome('mechroute-bench-'));
    await writeSlice(join(dir, 'slice.jsonl'));
    store = sharedStoreDir(MMLU_SLICE_STORE, join(dir, 'store'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('splits by subject, trains every method, and reports every field for every method', async () => {
    const [train, test] = [join(dir, 'train.jsonl'), join(dir, 'test.jsonl')];
    const split = await run(
      'node',
      [
        CLI,
        'traces',
        'split',
        join(dir, 'slice.jsonl'),
        '--by',
        'subject',
        '--test-share',
        '0.25',
        '--train',
        train,
        '--test',
        test,
      ],
      { env },
    );
    assert.match(split.stdout, /90 traces; .* 30 traces \(15 \/ 5 subject groups\)/);
    const subjectsOf = async (file: string) =>
      new Set(
        (await readFile(file, 'utf8'))
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l).subject as string),
      );
    const [trainSubjects, testSubjects] = [await subjectsOf(train), await subjectsOf(test)];
    assert.ok(
      [...testSubjects].every((s) => !trainSubjects.has(s)),
      'no subject on both sides',
    );

    const out = join(dir, 'report');
    const { stdout } = await run(
      'node',
      [
        CLI,
        'bench',
        'routing',
        '--train',
        train,
        '--test',
        test,
        '--store',
        store,
        '--extract',
        '--json',
        '--out',
        out,
        '--latency-samples',
        '5',
        '--save-models',
        join(dir, 'models'),
      ],
      { env, maxBuffer: 64 << 20 },
    );
    const result = JSON.parse(stdout) as {
      n_train: number;
      n_test: number;
      weak_tier: string;
      methods: Record<string, Record<string, unknown>>;
    };
    assert.equal(result.n_train, 90);
    assert.equal(result.n_test, 30);
    assert.deepEqual(Object.keys(result.methods).sort(), [...BENCH_METHODS].sort());
    for (const [name, m] of Object.entries(result.methods)) {
      for (const field of [...EVAL_FIELDS, 'latency_ms_p50', 'latency_ms_p95', 'train_ms']) {
        assert.ok(field in m, `${name}.${field}`);
      }
      const auroc = (m.auroc as Record<string, number>)[result.weak_tier]!;
      assert.ok(auroc >= 0 && auroc <= 1, `${name} AUROC ${auroc}`);
      assert.ok(
        (m.latency_ms_p50 as number) > 0 && (m.latency_ms_p95 as number) >= (m.latency_ms_p50 as number),
      );
      assert.equal(m.n, 30);
    }
    // The saved text classifiers (the methods a `text-embedding` model file can hold) load and route as
    // the benchmark measured them.
    for (const name of BASELINE_METHODS) {
      const model = await loadBaselineModel(join(dir, 'models', `${name}.json`));
      assert.equal(model.method, name);
    }
    const tfidf = baselineScorer(await loadBaselineModel(join(dir, 'models', 'tfidf-lr.json')), {});
    const score = await tfidf.score('What is the capital of France?');
    assert.deepEqual(Object.keys(score.tiers), tfidf.tiers);
    const report = await readFile(join(out, 'report.md'), 'utf8');
    for (const name of BENCH_METHODS) assert.ok(report.includes(`| ${name} `), name);
    for (const svg of ['deferral.svg', 'calibration.svg']) {
      const text = await readFile(join(out, svg), 'utf8');
      assert.match(text, /^<svg/);
      assert.match(text, /oracle|perfect/);
    }
    // The plots' data, from which `npm run charts` redraws them.
    const charts = JSON.parse(await readFile(join(out, 'charts.json'), 'utf8'));
    const names: string[] = charts.deferral.map((s: { name: string }) => s.name);
    assert.deepEqual(names.slice(-2), ['random', 'oracle']);
    assert.deepEqual(names.slice(0, -2).sort(), [...BENCH_METHODS].sort());
  });
});
