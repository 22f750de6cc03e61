import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { packageRoot } from '../../src/paths.js';
import type { LocalLlamaModel } from '../../src/tiers/providers/local-llama/local-llama-model.js';
import { createUpstreamModel, type OpenAIUpstream, startOpenAIUpstream } from '../support/openai-upstream.js';
import { startScriptedUpstream } from '../support/scripted-upstream.js';
import { remoteTierConfig, writeServerConfig } from '../support/server-config.js';

/**
 * `mechroute label --config … --tier …` against OpenAI-compatible upstreams on loopback: the real local
 * model behind the OpenAI wire, and a model-free scripted one for failures, code grading and a killed run.
 */
const cli = join(packageRoot, 'bin', 'mechroute.js');
const KEY_VAR = 'MECHROUTE_LABEL_TEST_KEY';
const TIER = 'gpt-4-1106-preview';
const MIXTRAL = 'mixtral-8x7b-instruct';

const labelArgs = (config: string, tier: string, traces: string, out: string, ...extra: string[]) => [
  '--config',
  config,
  '--tier',
  tier,
  '--traces',
  traces,
  '--out',
  out,
  '--json',
  ...extra,
];

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, 'label', ...args],
      { env: { ...process.env, ...env } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const jsonl = (records: object[]) => `${records.map((r) => JSON.stringify(r)).join('\n')}\n`;
const readJsonl = async (file: string) =>
  (await readFile(file, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
const promptOf = (body: { messages: Array<{ content: string }> }) => body.messages[0]!.content;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mechroute-label-remote-'));
});
after(async () => rm(dir, { recursive: true, force: true }));

describe('label a remote tier served by the real model', () => {
  let model: LocalLlamaModel;
  let upstream: OpenAIUpstream;
  const key = 'sk-label-test';
  const scripted = new Map([
    ['Tom has 3 apples', '3 + 4 = 7\n#### 7'],
    ['Which planet is the largest', 'Answer: C'],
  ]);
  before(async () => {
    model = await createUpstreamModel(2);
    upstream = await startOpenAIUpstream({
      model,
      apiKey: key,
      // Two answers are scripted so that a pass and a fail are known; the other two are the model's own.
      script: (body) => {
        const prompt = promptOf(body as { messages: Array<{ content: string }> });
        const text = [...scripted].find(([k]) => prompt.includes(k))?.[1];
        if (text === undefined) return undefined;
        return {
          id: 'chatcmpl-scripted',
          object: 'chat.completion',
          created: 0,
          model: TIER,
          choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 40, completion_tokens: 9, total_tokens: 49 },
        };
      },
    });
  });
  after(async () => {
    await upstream.close();
    await model.dispose();
  });

  it('grades GSM8K-style and multiple-choice answers and records tokens, cost and latency', async () => {
    const traces = join(dir, 'slice.jsonl');
    const out = join(dir, 'slice-labelled.jsonl');
    await writeFile(
      traces,
      jsonl([
        {
          id: 'gsm/a',
          prompt: 'Tom has 3 apples and buys 4 more. How many apples does he have now?',
          reference_answer: '7',
          outcomes: { 'mixtral-8x7b-instruct': true },
        },
        {
          id: 'gsm/b',
          prompt: 'A box holds 6 eggs. How many eggs are in 2 boxes?',
          reference_answer: '12',
          outcomes: {},
        },
        {
          id: 'mc/a',
          prompt: 'Which planet is the largest?\nA. Mars\nB. Jupiter\nC. Venus\nD. Earth',
          reference_answer: 'B',
          outcomes: {},
        },
        {
          id: 'mc/b',
          prompt: 'What is the capital of France?\nA. Berlin\nB. Madrid\nC. Paris\nD. Rome',
          reference_answer: 'C',
          outcomes: {},
        },
      ]),
    );
    const config = await writeServerConfig(dir, {
      tiers: [remoteTierConfig(TIER, [{ base_url: upstream.baseUrl, api_key_env: KEY_VAR }])],
    });
    const args = labelArgs(config, TIER, traces, out, '--max-tokens', '16', '--concurrency', '2');

    const refused = await runCli(args);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`tier "${TIER}" is unavailable: .*set ${KEY_VAR}`));
    assert.equal(existsSync(out), false);

    const run = await runCli(args, { [KEY_VAR]: key });
    assert.equal(run.code, 0, run.stderr);
    const summary = JSON.parse(run.stdout);
    assert.equal(summary.provider, 'openai');
    assert.equal(summary.labelled, 4);
    assert.equal(summary.errors, 0);
    const total = (c: { pass: number; fail: number; ungradable: number }) => c.pass + c.fail + c.ungradable;
    assert.equal(total(summary.by_method.numeric), 2);
    assert.equal(total(summary.by_method.choice), 2);
    assert.equal(upstream.requests.length, 4);
    for (const request of upstream.requests) {
      assert.equal(request.outcome, 200);
      assert.equal((request.body as { max_tokens: number }).max_tokens, 16);
      assert.equal((request.body as { temperature: number }).temperature, 0);
    }

    const byId = new Map((await readJsonl(out)).map((t) => [t.id, t]));
    assert.equal(byId.size, 4);
    const scriptedPass = byId.get('gsm/a');
    assert.equal(scriptedPass.outcomes[TIER], true);
    assert.equal(scriptedPass.outcomes['mixtral-8x7b-instruct'], true);
    assert.deepEqual(scriptedPass.tokens[TIER], { input: 40, output: 9 });
    // $10 / $30 per Mtok (the config's price for the tier) on the upstream's usage.
    assert.equal(scriptedPass.cost[TIER], (40 * 10 + 9 * 30) / 1e6);
    assert.equal(scriptedPass.grading[TIER].how, '#### marker');
    assert.equal(scriptedPass.grading[TIER].deployment, `${TIER}/0`);
    const scriptedFail = byId.get('mc/a');
    assert.equal(scriptedFail.outcomes[TIER], false);
    assert.deepEqual(
      { method: scriptedFail.grading[TIER].method, verdict: scriptedFail.grading[TIER].verdict },
      { method: 'choice', verdict: 'fail' },
    );
    assert.equal(scriptedFail.grading[TIER].extracted, 'C');

    let cost = 0;
    for (const id of ['gsm/b', 'mc/b']) {
      // The model's own answers: whatever it said, the record must say how it was graded, consistently.
      const t = byId.get(id);
      const grading = t.grading[TIER];
      assert.equal(grading.method, id.startsWith('gsm') ? 'numeric' : 'choice');
      if (grading.verdict === 'ungradable') {
        assert.equal(t.outcomes[TIER], undefined);
        assert.ok(grading.reason.length > 0);
      } else assert.equal(t.outcomes[TIER], grading.verdict === 'pass');
      assert.ok(t.responses[TIER].length > 0);
      assert.ok(t.tokens[TIER].input > 10, 'the real prompt token count, from the upstream');
      assert.ok(t.tokens[TIER].output > 0 && t.tokens[TIER].output <= 16);
      assert.equal(t.cost[TIER], (t.tokens[TIER].input * 10 + t.tokens[TIER].output * 30) / 1e6);
      assert.ok(t.latency_ms[TIER] > 0);
      cost += t.cost[TIER];
    }
    assert.ok(
      Math.abs(summary.cost_usd - (cost + byId.get('gsm/a').cost[TIER] + byId.get('mc/a').cost[TIER])) <
        1e-12,
    );
    assert.equal(summary.latency_ms.n, 4);

    const again = JSON.parse((await runCli(args, { [KEY_VAR]: key })).stdout);
    assert.equal(again.skipped_done, 4);
    assert.equal(again.labelled, 0);
    assert.equal(upstream.requests.length, 4);
  });
});

describe('label a remote tier served by a scripted upstream', () => {
  const price = { input_per_mtok: 0.24, output_per_mtok: 0.24 };
  /** Each test's config in its own folder (the server's state file would sit beside it). */
  const configFor = async (deployments: Array<{ base_url: string }>, name: string) =>
    writeServerConfig(await mkdtemp(join(dir, `${name}-`)), {
      tiers: [remoteTierConfig(MIXTRAL, deployments, { price })],
    });
  const numericTraces = (n: number) =>
    jsonl(
      Array.from({ length: n }, (_, i) => ({
        id: `q${i}`,
        prompt: `Question ${i}`,
        outcomes: {},
        reference_answer: '1',
      })),
    );

  it('retries transient failures and fails over within the tier', async () => {
    const upstream = await startScriptedUpstream({ text: '#### 1', failCalls: [1, 2] });
    try {
      // Nothing listens on port 9: the first deployment refuses every connection.
      const config = await configFor(
        [{ base_url: 'http://127.0.0.1:9/v1' }, { base_url: upstream.url }],
        'retry',
      );
      const traces = join(dir, 'retry.jsonl');
      const out = join(dir, 'retry-labelled.jsonl');
      await writeFile(traces, numericTraces(3));
      const run = await runCli(labelArgs(config, MIXTRAL, traces, out, '--concurrency', '1'));
      assert.equal(run.code, 0, run.stderr);
      const summary = JSON.parse(run.stdout);
      assert.equal(summary.pass, 3);
      assert.equal(summary.errors, 0);
      // Two 503s from the scripted deployment, each retried; the dead one is tried until its breaker opens.
      assert.equal(upstream.headers.length, 5);
      const written = await readJsonl(out);
      const first = written.find((t) => t.id === 'q0');
      assert.equal(first.grading[MIXTRAL].deployment, `${MIXTRAL}/1`);
      assert.ok(first.grading[MIXTRAL].failed_attempts >= 3);
      assert.equal(
        summary.failed_attempts,
        written.reduce((s, t) => s + t.grading[MIXTRAL].failed_attempts, 0),
      );
    } finally {
      await upstream.close();
    }
  });

  it('grades code answers with a grading command, beside the built-in graders', async () => {
    const answers: Record<string, string> = {
      'Write add': 'Here it is:\n```js\nfunction add(a, b) { return a + b; }\n```',
      'Write mul': '```js\nfunction mul(a, b) { return a + b; }\n```',
      'Write neg': 'I would rather not.',
      'Write spin': '```js\nfunction spin() { while (true) {} }\n```',
      'How many legs': 'Two birds have 2 legs each.\n#### 4',
    };
    const upstream = await startScriptedUpstream({
      answer: (body) => Object.entries(answers).find(([k]) => promptOf(body).startsWith(k))![1],
    });
    try {
      const config = await configFor([{ base_url: upstream.url }], 'code');
      const grader = join(dir, 'grader.mjs');
      await writeFile(
        grader,
        `import { readFileSync } from 'node:fs';
const { code, trace } = JSON.parse(readFileSync(0, 'utf8'));
if (process.env.${KEY_VAR} !== undefined) { console.error('credentials leaked'); process.exit(3); }
if (!/function\\s/.test(code)) { console.log('no function in the answer'); process.exit(2); }
const ok = trace.tests.every((t) => new Function(code + '\\nreturn (' + t + ');')());
console.log(ok ? trace.tests.length + ' tests pass' : 'a test failed');
process.exit(ok ? 0 : 1);
`,
      );
      const traces = join(dir, 'code.jsonl');
      const out = join(dir, 'code-labelled.jsonl');
      const task = (name: string, tests: string[]) => ({
        id: `mbpp/${name}`,
        prompt: `Write ${name}(…) in JavaScript.`,
        outcomes: {},
        tests,
      });
      await writeFile(
        traces,
        jsonl([
          task('add', ['add(1, 2) === 3', 'add(-1, 1) === 0']),
          task('mul', ['mul(2, 3) === 6']),
          task('neg', ['neg(1) === -1']),
          task('spin', ['spin() === 1']),
          { id: 'gsm/legs', prompt: 'How many legs do two birds have?', outcomes: {}, reference_answer: '4' },
        ]),
      );
      const run = await runCli(
        labelArgs(
          config,
          MIXTRAL,
          traces,
          out,
          '--grade-command',
          `node ${JSON.stringify(grader)}`,
          '--grade-timeout',
          '1',
        ),
        { [KEY_VAR]: 'sk-must-not-reach-the-grader' },
      );
      assert.equal(run.code, 0, run.stderr);
      const summary = JSON.parse(run.stdout);
      assert.deepEqual(summary.by_method, {
        command: { pass: 1, fail: 1, ungradable: 2 },
        numeric: { pass: 1, fail: 0, ungradable: 0 },
      });
      assert.deepEqual(summary.ungradable_reasons, {
        'grading command exited 2 (cannot grade)': 1,
        'grading command timed out after 1000 ms': 1,
      });
      const byId = new Map((await readJsonl(out)).map((t) => [t.id, t.grading[MIXTRAL]]));
      assert.deepEqual(
        { verdict: byId.get('mbpp/add').verdict, how: byId.get('mbpp/add').how },
        { verdict: 'pass', how: '2 tests pass' },
      );
      assert.equal(byId.get('mbpp/mul').verdict, 'fail');
      assert.equal(
        byId.get('mbpp/neg').reason,
        'grading command exited 2 (cannot grade): no function in the answer',
      );
      assert.equal(byId.get('gsm/legs').method, 'numeric');
    } finally {
      await upstream.close();
    }
  });

  it('resumes a killed run: nothing labelled twice, nothing lost', async () => {
    const upstream = await startScriptedUpstream({ text: '#### 1', delayMs: 300 });
    try {
      const config = await configFor([{ base_url: upstream.url }], 'kill');
      const traces = join(dir, 'kill.jsonl');
      const out = join(dir, 'kill-labelled.jsonl');
      await writeFile(traces, numericTraces(6));
      const args = labelArgs(config, MIXTRAL, traces, out, '--concurrency', '1');
      const child = spawn(process.execPath, [cli, 'label', ...args], { stdio: 'ignore' });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const lines = async () =>
        existsSync(out) ? (await readFile(out, 'utf8')).split('\n').filter(Boolean).length : 0;
      while ((await lines()) < 2) await sleep(25);
      child.kill('SIGKILL');
      await exited;
      const before = await lines();
      assert.ok(before >= 2 && before < 6, `killed after ${before} of 6`);

      const resumed = await runCli(args);
      assert.equal(resumed.code, 0, resumed.stderr);
      const summary = JSON.parse(resumed.stdout);
      assert.equal(summary.skipped_done, before);
      assert.equal(summary.labelled, 6 - before);
      const ids = (await readJsonl(out)).map((t) => t.id);
      assert.deepEqual([...ids].sort(), ['q0', 'q1', 'q2', 'q3', 'q4', 'q5']);
      // At most the one answer in flight when the run was killed is asked for twice.
      assert.ok(upstream.headers.length <= 7);
    } finally {
      await upstream.close();
    }
  });
});
