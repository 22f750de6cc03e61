import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { packageRoot } from '../../src/paths.js';
import { SHARED_DATA, sharedStoreDir } from '../support/mmlu-slice.js';
import { tempHome } from '../support/temp-home.js';

const run = promisify(execFile);
const CLI = join(packageRoot, 'bin', 'mechroute.js');
const ADDED = 'claude-v1';

/** The 60 shortest RouterBench prompts (8 tiers, real costs). */
async function writeSlice(file: string): Promise<void> {
  const lines = (await readFile(join(SHARED_DATA, 'routerbench-traces.jsonl'), 'utf8'))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => ({ line, length: (JSON.parse(line) as { prompt: string }).prompt.length }))
    .sort((a, b) => a.length - b.length)
    .slice(0, 60);
  await writeFile(file, `${lines.map((l) => l.line).join('\n')}\n`);
}

const json = async (file: string) => JSON.parse(await readFile(file, 'utf8'));

/**
 * `mechroute tiers` end to end with the real encoder on a small real slice: a bundle trained on 8 tiers,
 * clustered, one tier removed and added back from anchors chosen by `tiers anchors`, scored by `eval`.
 * At 60 prompts the fit means little; the test checks the flow and that nothing else in the bundle moves.
 */
describe('mechroute tiers clusters, anchors, remove, add and list', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let traces: string;
  let store: string;
  /** One command line (paths here have no spaces), run against the test's store. */
  const cli = async (line: string) =>
    (await run('node', [CLI, ...line.split(' '), '--store', store], { env })).stdout;
  const cliJson = async (line: string) => JSON.parse(await cli(`${line} --json`));

  before(async () => {
    ({ dir, env } = await tempHome('mechroute-tiers-'));
    traces = join(dir, 'slice.jsonl');
    store = sharedStoreDir('routerbench-shortest-store', join(dir, 'store'));
    await writeSlice(traces);
    await run('node', [CLI, 'extract', '--traces', traces, '--batch', '8', '--store', store], { env });
    await run(
      'node',
      [
        CLI,
        'train',
        '--traces',
        traces,
        '--out',
        join(dir, 'full.json'),
        '--layers',
        '6',
        '--pooling',
        'last',
        '--no-cv',
        '--no-mlp',
        '--store',
        store,
      ],
      { env },
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('re-adds a removed tier from anchors, leaving every other head byte-identical', async () => {
    const at = (file: string) => join(dir, file);
    const [full, clustered, anchors] = [at('full.json'), at('clustered.json'), at('anchors.jsonl')];
    const [again, removed, added] = [at('anchors-again.jsonl'), at('removed.json'), at('added.json')];
    const c = await cliJson(`tiers clusters --bundle ${full} --pool ${traces} --k 4 --out ${clustered}`);
    assert.equal(c.rows, 60);
    assert.equal(
      c.sizes.reduce((s: number, v: number) => s + v, 0),
      60,
    );

    const anchorsCommand = `tiers anchors --bundle ${clustered} --pool ${traces} --n 30 --out`;
    const a = await cliJson(`${anchorsCommand} ${anchors}`);
    assert.equal(a.chosen, 30);
    assert.ok(
      a.per_cluster.every((p: { anchors: number }) => p.anchors > 0),
      JSON.stringify(a.per_cluster),
    );
    assert.equal((await readFile(anchors, 'utf8')).trim().split('\n').length, 30);
    // Deterministic: the same call picks the same prompts.
    await cli(`${anchorsCommand} ${again}`);
    assert.equal(await readFile(again, 'utf8'), await readFile(anchors, 'utf8'));

    const r = await cliJson(`tiers remove --bundle ${clustered} --tier ${ADDED} --out ${removed}`);
    assert.equal(r.tiers.length, 7);
    assert.ok(!r.tiers.includes(ADDED));

    const report = await cliJson(
      `tiers add --bundle ${removed} --tier ${ADDED} --anchors ${anchors} --cost-from-traces --out ${added}`,
    );
    assert.equal(report.anchors, 30);
    assert.ok(['constant', 'consensus', 'cluster', 'low-rank', 'logistic'].includes(report.method));
    assert.match(report.reason, /log loss|cross-validate/);
    assert.ok(report.mean_cost_usd > 0);

    const [before, after] = [await json(removed), await json(added)];
    for (const key of ['encoder', 'features', 'standardizer', 'clusters', 'difficulty', 'metrics'])
      assert.equal(JSON.stringify(after[key]), JSON.stringify(before[key]), key);
    assert.equal(after.tiers.length, 8);
    for (const [k, tier] of before.tiers.entries())
      assert.equal(JSON.stringify(after.tiers[k]), JSON.stringify(tier));
    assert.equal(after.tiers[7].id, ADDED);
    assert.equal(after.tiers[7].fit.method, report.method);

    const list = await cliJson(`tiers list --bundle ${added}`);
    assert.deepEqual(
      list.tiers.filter((t: { method: string | null }) => t.method !== null).map((t: { id: string }) => t.id),
      [ADDED],
    );
    const text = await cli(`tiers list --bundle ${added}`);
    assert.match(text, new RegExp(`${ADDED} \\| ${after.tiers[7].kind} \\| ${report.method}`));

    // The added head scores like any other through eval.
    const evaluated = await cliJson(`eval --probes ${added} --traces ${traces}`);
    assert.ok(Number.isFinite(evaluated.brier[ADDED]));
    assert.ok(evaluated.multi !== null);
  });

  it('refuses too few anchors, a bad price and an unknown tier with one-line errors', async () => {
    const few = join(dir, 'few.jsonl');
    await writeFile(few, `${(await readFile(traces, 'utf8')).split('\n').slice(0, 10).join('\n')}\n`);
    const failing = async (line: string) => {
      const error = await cli(line).then(
        () => assert.fail('expected a failure'),
        (e: { stderr: string; code: number }) => e,
      );
      assert.equal(error.code, 1);
      assert.equal(error.stderr.trim().split('\n').length, 1, error.stderr);
      return error.stderr;
    };
    const bundle = join(dir, 'full.json');
    const out = join(dir, 'x.json');
    assert.match(
      await failing(`tiers add --bundle ${bundle} --tier new --anchors ${few} --out ${out}`),
      /has 0 traces with an outcome for tier "new"; at least 25/,
    );
    assert.match(
      await failing(
        `tiers add --bundle ${bundle} --tier ${ADDED} --anchors ${few} --price cheap --out ${out}`,
      ),
      /--price: expected in\/out/,
    );
    assert.match(await failing(`tiers remove --bundle ${bundle} --tier nope --out ${out}`), /no tier "nope"/);
    assert.match(
      await failing(`tiers anchors --bundle ${bundle} --pool ${traces} --out ${out}`),
      /has no clusters; run `mechroute tiers clusters/,
    );
  });
});
