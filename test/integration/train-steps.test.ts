import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ActivationStore } from '../../src/activations/activation-store.js';
import { packageRoot } from '../../src/paths.js';
import { loadProbeBundle, type ProbeBundle } from '../../src/probes/probe-bundle.js';
import { predictProbes } from '../../src/probes/probe-predict.js';
import { stepProbeText } from '../../src/probes/step-probe-info.js';
import { segmentSteps, stepPrefix } from '../../src/steps/segment-steps.js';
import { readTraces } from '../../src/traces/jsonl-reader.js';
import { sharedEncoder } from '../support/default-encoder.js';
import { tempHome } from '../support/temp-home.js';

const run = promisify(execFile);
const CLI = join(packageRoot, 'bin', 'mechroute.js');
/** 10 real GSM8K problems (the shortest, 6 that Mixtral got right and 4 it got wrong) from ../shared/data. */
const TRACES = join(packageRoot, 'test', 'integration', 'fixtures', 'gsm8k-steps-10.jsonl');
const TIERS = ['mixtral-8x7b-instruct', 'gpt-4-1106-preview'];
const POINT_FIELDS = ['accuracy', 'cost_share', 'escalation_rate', 'mean_escalation_step'];

/**
 * train --steps and eval-steps end to end with the real encoder on a little real data: step prefixes up
 * to k = 2 are extracted (layers 0..2, so the encoder stops early and the test stays small), probes
 * trained, and the bundle used the way the live step mode uses it (features of stepProbeText(prompt,
 * prefix) → predictProbes). The numbers mean nothing at this size; the plumbing and the fields do.
 */
describe('mechroute train --steps and eval-steps with the real encoder', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let store: string;
  let bundleFile: string;
  let bundle: ProbeBundle;
  // biome-ignore lint/suspicious/noExplicitAny: the eval-steps JSON, checked field by field
  let heldOutReport: any;

  before(async () => {
    ({ dir, env } = await tempHome('mechroute-train-steps-'));
    store = join(dir, 'step-store');
    bundleFile = join(dir, 'steps.json');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('extracts the step prefixes and trains a step bundle split by problem', async () => {
    const trained = await run(
      'node',
      [
        CLI,
        'train',
        '--steps',
        '--extract',
        '--traces',
        TRACES,
        '--store',
        store,
        '--out',
        bundleFile,
        '--max-k',
        '2',
        '--deepest-layer',
        '2',
        '--folds',
        '2',
        '--seed',
        '3',
        '--json',
      ],
      { env, maxBuffer: 64 << 20 },
    );
    const report = JSON.parse(trained.stdout);
    assert.deepEqual(Object.keys(report.tiers).sort(), [...TIERS].sort());
    assert.equal(report.problems.train + report.problems.calibration + report.problems.test, 10);
    assert.ok(report.problems.test >= 1);
    // Layer chosen among the stored ones: last 0..2 and mean 0..2.
    assert.equal(report.layer_table.length, 6);
    assert.ok(report.features.layers[0] <= 2);
    for (const tier of TIERS) {
      const ks = report.tiers[tier].step_auroc.map((r: { k: number }) => r.k);
      assert.ok(
        ks.every((k: number) => k >= 0 && k <= 2),
        `${tier} k ${ks}`,
      );
    }

    const { manifest } = await import('../../src/models/manifest-registry.js').then((m) =>
      m.resolveCachedModel('gemma-3-270m-q4_k_m'),
    );
    bundle = await loadProbeBundle(bundleFile, manifest);
    assert.equal(bundle.steps?.text_format, 'prompt-blank-line-steps');
    assert.equal(bundle.steps?.metrics?.max_k, 2);
    const split = bundle.steps?.metrics?.split as { test_problems: string[] };
    assert.equal(split.test_problems.length, report.problems.test);
  });

  it('serves the live-mode contract: a fresh encode of prompt + steps predicts what the stored features do', async () => {
    const { traces } = await readTraces(TRACES);
    const trace = traces[0]!;
    const response = trace.responses!['mixtral-8x7b-instruct']!;
    const steps = segmentSteps(response, bundle.steps!.segmentation);
    const text = stepProbeText(trace.prompt!, stepPrefix(response, steps, 1));
    const encoder = await sharedEncoder();
    const [fresh] = await encoder.encode([text], {
      layers: bundle.features.layers,
      pooling: bundle.features.pooling,
    });
    const vector = Float32Array.from(
      (bundle.features.pooling === 'last' ? fresh!.last! : fresh!.mean!).flatMap((v) => Array.from(v)),
    );
    const live = predictProbes(bundle, vector).tiers['mixtral-8x7b-instruct']!;

    const { promptHash } = await import('../../src/activations/store-format.js');
    const reader = await ActivationStore.open({
      encoder: { name: 'gemma-3-270m-q4_k_m', sha256: bundle.encoder.sha256 },
      dir: store,
      readOnly: true,
    });
    const stored = Float32Array.from(
      bundle.features.layers.flatMap((layer) =>
        Array.from(reader.matrix([promptHash(text)], layer, bundle.features.pooling)),
      ),
    );
    await reader.close();
    const offline = predictProbes(bundle, stored).tiers['mixtral-8x7b-instruct']!;
    assert.ok(live > 0 && live < 1);
    // The store keeps float16: the two agree to that precision, not bit for bit.
    assert.ok(Math.abs(live - offline) < 0.02, `live ${live} vs stored ${offline}`);
  });

  it('eval-steps --json reports step AUROC and every simulation field, and writes the plot', async () => {
    const out = join(dir, 'eval');
    const evaluated = await run(
      'node',
      [
        CLI,
        'eval-steps',
        '--probes',
        bundleFile,
        '--traces',
        TRACES,
        '--store',
        store,
        '--all',
        '--json',
        '--out',
        out,
      ],
      { env, maxBuffer: 64 << 20 },
    );
    const report = JSON.parse(evaluated.stdout);
    assert.equal(report.n_problems, 10);
    assert.equal(report.cheap_tier, 'mixtral-8x7b-instruct');
    assert.equal(report.strong_tier, 'gpt-4-1106-preview');
    assert.deepEqual(Object.keys(report.step_auroc).sort(), [...TIERS].sort());
    for (const row of report.step_auroc['mixtral-8x7b-instruct']) {
      assert.ok('k' in row && 'n' in row && 'auroc' in row && 'request_auroc' in row);
    }
    for (const policy of ['per_step', 'request_level']) {
      assert.equal(report[policy].length, report.taus.length);
      for (const point of report[policy])
        for (const f of POINT_FIELDS) assert.ok(f in point, `${policy}.${f}`);
    }
    for (const single of ['cheap_only', 'strong_only']) {
      for (const f of POINT_FIELDS) assert.ok(f in report[single], `${single}.${f}`);
    }
    assert.equal(report.strong_only.cost_share, 1);
    assert.ok(report.cheap_only.cost_share > 0 && report.cheap_only.cost_share < 1);
    // τ = 1 escalates everything at k = 0 (no probability reaches 1): the strong tier alone.
    const last = report.per_step.at(-1);
    assert.equal(last.escalation_rate, 1);
    assert.equal(last.mean_escalation_step, 0);
    assert.equal(last.accuracy, report.strong_only.accuracy);
    assert.match(await readFile(join(out, 'accuracy-vs-cost.svg'), 'utf8'), /^<svg/);

    const heldOut = await run(
      'node',
      [CLI, 'eval-steps', '--probes', bundleFile, '--traces', TRACES, '--store', store, '--json'],
      { env, maxBuffer: 64 << 20 },
    );
    const split = bundle.steps?.metrics?.split as { test_problems: string[] };
    heldOutReport = JSON.parse(heldOut.stdout);
    assert.equal(heldOutReport.n_problems, split.test_problems.length);
    assert.equal(heldOutReport.store.encoded, 0, 'every prefix was in the store');
  });

  it('eval-steps with no step store encodes the prefixes it needs into the default one', async () => {
    const first = JSON.parse(
      (
        await run('node', [CLI, 'eval-steps', '--probes', bundleFile, '--traces', TRACES, '--json'], {
          env,
          maxBuffer: 64 << 20,
        })
      ).stdout,
    );
    const split = bundle.steps?.metrics?.split as { test_problems: string[] };
    assert.equal(first.n_problems, split.test_problems.length);
    // The bundle reads a layer ≤ 2, so the default is train --steps's own default store (layers 0..9).
    const { manifest } = await import('../../src/models/manifest-registry.js').then((m) =>
      m.resolveCachedModel('gemma-3-270m-q4_k_m'),
    );
    assert.equal(first.store.dir, join(env.MECHROUTE_HOME!, 'step-activations', `${manifest.sha256}-L9`));
    assert.ok(first.store.encoded > 0 && first.store.failed === 0, JSON.stringify(first.store));
    // The same numbers as from the store train --steps filled (layers 0..2 of the same decodes).
    assert.deepEqual(first.step_auroc, heldOutReport.step_auroc);
  });
});
