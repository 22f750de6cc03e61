import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { packageRoot } from '../../src/paths.js';
import { SHARED_DATA } from '../support/mmlu-slice.js';
import { tempHome } from '../support/temp-home.js';

const run = promisify(execFile);
const CLI = join(packageRoot, 'bin', 'mechroute.js');

/** The 100 shortest RouterBench prompts (MBPP tasks): 8 tiers, each call's real cost in the trace. */
async function writeSlice(file: string): Promise<{ tiers: string[]; meanCost: Record<string, number> }> {
  const lines = (await readFile(join(SHARED_DATA, 'routerbench-traces.jsonl'), 'utf8'))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => ({ line, trace: JSON.parse(line) as { prompt: string; cost: Record<string, number> } }))
    .sort((a, b) => a.trace.prompt.length - b.trace.prompt.length)
    .slice(0, 100);
  await writeFile(file, `${lines.map((l) => l.line).join('\n')}\n`);
  const tiers = Object.keys(lines[0]!.trace.cost);
  const meanCost = Object.fromEntries(
    tiers.map((t) => [t, lines.reduce((s, l) => s + l.trace.cost[t]!, 0) / lines.length]),
  );
  return { tiers, meanCost };
}

const MULTI_FIELDS = [
  'best_single',
  'cost_saving_at_95',
  'cost_saving_at_parity',
  'frontier',
  'gap_closed_at_best_cost',
  'hull_auc',
  'oracle',
];

/**
 * N tiers end to end with the real encoder: 100 real RouterBench traces (8 tiers) extracted into a
 * temporary store, trained on, evaluated (`multi` included) and calibrated through the CLI. The numbers
 * mean little at this size; the test checks that every tier flows through, ordered by what a call costs.
 */
describe('mechroute train, eval and calibrate over an 8-tier ladder', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let traces: string;
  let ladder: Awaited<ReturnType<typeof writeSlice>>;

  before(async () => {
    ({ dir, env } = await tempHome('mechroute-ladder-'));
    traces = join(dir, 'slice.jsonl');
    ladder = await writeSlice(traces);
    await run('node', [CLI, 'extract', '--traces', traces, '--batch', '8'], { env });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('trains every tier cheapest first, and eval reports the multi-tier fields', async () => {
    const bundle = join(dir, 'ladder.json');
    const trained = await run(
      'node',
      [
        CLI,
        'train',
        '--traces',
        traces,
        '--out',
        bundle,
        '--json',
        '--layer-rows',
        '100',
        '--cv-layer-stride',
        '6',
        '--layer-latency',
        '2',
        '--pooling',
        'last',
        '--folds',
        '2',
        '--no-mlp',
        '--hybrid',
      ],
      { env, maxBuffer: 64 << 20 },
    );
    const report = JSON.parse(trained.stdout);
    const byCost = [...ladder.tiers].sort((a, b) => ladder.meanCost[a]! - ladder.meanCost[b]!);
    assert.deepEqual(
      report.tiers.map((t: { id: string }) => t.id),
      byCost,
    );
    for (const t of report.tiers) {
      assert.equal(t.cost_sources.trace_cost, 100, `${t.id}: every cost from the trace`);
      assert.equal(t.price_assumed_local, false, t.id);
    }
    // The layer table: every stored layer scored, each with its prefill's latency beside it.
    assert.equal(report.layer_table.length, 19);
    for (const row of report.layer_table) assert.ok(row.latency_ms_p50 > 0, `layer ${row.layer}`);
    const saved = JSON.parse(await readFile(bundle, 'utf8'));
    assert.equal(saved.features.max_prompt_tokens, 2048);
    for (const tier of saved.tiers) {
      assert.ok(Math.abs(tier.mean_cost_usd - ladder.meanCost[tier.id]!) < 1e-12, `${tier.id} mean cost`);
    }

    const evaluated = await run('node', [CLI, 'eval', '--probes', bundle, '--traces', traces, '--json'], {
      env,
      maxBuffer: 64 << 20,
    });
    const result = JSON.parse(evaluated.stdout);
    assert.equal(result.n, 100);
    assert.deepEqual(Object.keys(result.auroc).sort(), [...ladder.tiers].sort());
    assert.equal(result.cost_basis.router_prices_from, 'bundle');
    const { multi } = result;
    assert.deepEqual(Object.keys(multi).sort(), MULTI_FIELDS);
    assert.ok(ladder.tiers.includes(multi.best_single.tier));
    assert.ok(multi.oracle.quality >= multi.best_single.quality);
    assert.ok(multi.oracle.cost <= multi.best_single.cost);
    for (const key of ['cost_saving_at_parity', 'cost_saving_at_95'])
      assert.ok(multi[key] >= 0 && multi[key] < 1, `${key}: ${multi[key]}`);
    assert.ok(multi.hull_auc.router >= multi.hull_auc.single_tiers - 1e-12, 'routing never loses to mixing');
    const policies = new Set(multi.frontier.map((p: { policy: string }) => p.policy));
    assert.deepEqual([...policies].sort(), ['threshold', 'utility']);

    // The hybrid head: its own P(success | tier) for every tier, scored the same way.
    assert.equal(saved.hybrid.stacker.tiers.length, 8);
    const viaHybrid = JSON.parse(
      (
        await run(
          'node',
          [CLI, 'eval', '--probes', bundle, '--traces', traces, '--json', '--signal', 'hybrid'],
          {
            env,
            maxBuffer: 64 << 20,
          },
        )
      ).stdout,
    );
    assert.equal(viaHybrid.head, 'hybrid');
    assert.deepEqual(Object.keys(viaHybrid.multi).sort(), MULTI_FIELDS);
    assert.notDeepEqual(viaHybrid.auroc, result.auroc);

    // calibrate sweeps thresholds for the 7 tiers below the frontier and writes a policy for all 8.
    const policy = join(dir, 'policy.yaml');
    const calibrated = await run(
      'node',
      [
        CLI,
        'calibrate',
        '--probes',
        bundle,
        '--traces',
        traces,
        '--target',
        '0.9',
        '--allow-unreachable',
        '--out',
        policy,
        '--json',
        '--resamples',
        '50',
        '--signal',
        'hybrid',
      ],
      { env, maxBuffer: 64 << 20 },
    );
    const chosen = JSON.parse(calibrated.stdout).classes[0].chosen;
    assert.deepEqual(Object.keys(chosen.shares).sort(), [...ladder.tiers].sort());
    assert.equal(Object.keys(chosen.thresholds).length, 7);
    const written = await readFile(policy, 'utf8');
    assert.match(written, /kind: threshold/);
    assert.match(written, /signal: hybrid/);
  });
});
