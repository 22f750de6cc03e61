import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { promisify } from 'node:util';
import { packageRoot } from '../../src/paths.js';

const run = promisify(execFile);

it('mechroute label runs the real local tier on a GSM8K problem and records the graded outcome', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mechroute-label-it-'));
  try {
    const input = join(dir, 'gsm.jsonl');
    const out = join(dir, 'labelled.jsonl');
    const trace = {
      id: 'gsm8k/x',
      dataset: 'gsm8k',
      prompt: 'Tom has 3 apples and buys 4 more. How many apples does he have now?',
      reference_answer: '7',
      outcomes: { 'gpt-4-1106-preview': true },
    };
    await writeFile(input, `${JSON.stringify(trace)}\n`);
    const cli = join(packageRoot, 'bin', 'mechroute.js');
    const args = [
      cli,
      'label',
      '--traces',
      input,
      '--out',
      out,
      '--max-tokens',
      '24',
      '--cut-off',
      'fail',
      '--json',
    ];
    const first = JSON.parse((await run(process.execPath, args)).stdout);
    assert.equal(first.labelled, 1);
    assert.equal(first.provider, 'local');
    assert.equal(first.model, 'gemma-3-270m-q4_k_m');
    assert.equal(first.cost_usd, 0);
    const [labelled] = (await readFile(out, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    // Whatever the model said, the record says how it was graded; an unreadable answer gets no outcome.
    const grading = labelled.grading['gemma-3-270m'];
    assert.equal(grading.method, 'numeric');
    assert.equal(grading.deployment, 'gemma-3-270m/local');
    // --cut-off fail: an answer cut off at the limit before its final line is a failure, not unreadable.
    if (grading.finish_reason === 'length') assert.notEqual(grading.verdict, 'ungradable');
    if (grading.verdict === 'ungradable') {
      assert.equal(labelled.outcomes['gemma-3-270m'], undefined);
      assert.equal(first.ungradable, 1);
    } else assert.equal(labelled.outcomes['gemma-3-270m'], grading.verdict === 'pass');
    assert.equal(labelled.cost['gemma-3-270m'], 0);
    assert.equal(labelled.outcomes['gpt-4-1106-preview'], true);
    assert.ok(labelled.tokens['gemma-3-270m'].output > 0 && labelled.tokens['gemma-3-270m'].output <= 24);
    assert.ok(labelled.tokens['gemma-3-270m'].input > 10);
    assert.ok(labelled.latency_ms['gemma-3-270m'] > 0);
    assert.ok(labelled.responses['gemma-3-270m'].length > 0);
    const again = JSON.parse((await run(process.execPath, args)).stdout);
    assert.equal(again.labelled, 0);
    assert.equal(again.skipped_done, 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
