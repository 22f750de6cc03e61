import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type AdvisorLoopDeps,
  ASK_ADVISOR,
  ASK_ADVISOR_TOOL,
  advisorMessages,
  refusalText,
  runAdvisorLoop,
} from '../../../src/advisor/advisor-loop.js';
import {
  type GenerateResult,
  type TierRequest,
  type ToolCall,
  UpstreamStatusError,
} from '../../../src/tiers/tier-model.js';

/** The worker–advisor loop on a scripted worker: budget, refusals, bad calls and the last round. */
const result = (text: string, toolCalls: ToolCall[] = []): GenerateResult => ({
  text,
  finish_reason: toolCalls.length ? 'tool_calls' : 'stop',
  usage: { input_tokens: 100, output_tokens: 10 },
  ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
  warnings: [],
  tier: 'worker',
  deployment: 'worker/0',
});

const ask = (id: string, args: unknown = { question: 'what is 6*7?' }, name = ASK_ADVISOR): ToolCall => ({
  id,
  type: 'function',
  function: { name, arguments: typeof args === 'string' ? args : JSON.stringify(args) },
});

function scripted(turns: GenerateResult[], advisorFails = false) {
  const workerRequests: TierRequest[] = [];
  const questions: string[] = [];
  const deps: AdvisorLoopDeps = {
    async callWorker(request) {
      workerRequests.push(structuredClone(request));
      return turns[workerRequests.length - 1] ?? result('final');
    },
    async callAdvisor(question) {
      questions.push(question);
      if (advisorFails) throw new UpstreamStatusError(503, 'advisor/0', 'down');
      return { ...result('42'), usage: { input_tokens: 1_000_000, output_tokens: 0 } };
    },
    adviceCost: (usage) => usage.input_tokens / 1_000_000,
  };
  return { deps, workerRequests, questions };
}

const request: TierRequest = { messages: [{ role: 'user', content: 'Solve it.' }] };

test('within budget the question reaches the advisor and its answer returns as the tool result', async () => {
  const { deps, workerRequests, questions } = scripted([result('', [ask('c1')]), result('It is 42.')]);
  const run = await runAdvisorLoop(deps, { request, budget: 1, maxRounds: 4 });
  assert.equal(run.final.text, 'It is 42.');
  assert.equal(run.rounds, 2);
  assert.deepEqual(questions, ['what is 6*7?']);
  assert.deepEqual(
    run.calls.map((c) => [c.outcome, c.cost_usd]),
    [['answered', 1]],
  );
  assert.deepEqual(workerRequests[0]!.tools, [ASK_ADVISOR_TOOL]);
  const second = workerRequests[1]!.messages;
  const asked = second.at(-2)!;
  assert.equal(asked.role, 'assistant');
  assert.equal(asked.role === 'assistant' && asked.tool_calls?.[0]?.id, 'c1');
  assert.deepEqual(second.at(-1), { role: 'tool', tool_call_id: 'c1', content: '42' });
  assert.deepEqual(run.worker_usage, { input_tokens: 200, output_tokens: 20 });
});

test('past the budget the tool refuses, without calling the advisor', async () => {
  const { deps, questions, workerRequests } = scripted([
    result('', [ask('c1')]),
    result('', [ask('c2'), ask('c3')]),
    result('done'),
  ]);
  const run = await runAdvisorLoop(deps, { request, budget: 1, maxRounds: 5 });
  assert.deepEqual(
    run.calls.map((c) => c.outcome),
    ['answered', 'refused', 'refused'],
  );
  assert.equal(questions.length, 1);
  assert.equal(run.calls[1]!.result, refusalText(1));
  assert.match(refusalText(1), /budget of 1 advisor call for this task is spent/);
  assert.equal(workerRequests[2]!.messages.filter((m) => m.role === 'tool').length, 3);
  const none = scripted([result('', [ask('c1')]), result('alone')]);
  const zero = await runAdvisorLoop(none.deps, { request, budget: 0, maxRounds: 3 });
  assert.deepEqual(
    zero.calls.map((c) => c.outcome),
    ['refused'],
  );
  assert.equal(none.questions.length, 0);
});

test('bad calls are answered with an explanation and spend nothing; a failed advisor spends the call', async () => {
  const { deps, questions } = scripted([
    result('', [ask('c1', 'not json'), ask('c2', { q: 'x' }), ask('c3', {}, 'search')]),
    result('', [ask('c4')]),
    result('ok'),
  ]);
  const run = await runAdvisorLoop(deps, { request, budget: 1, maxRounds: 4 });
  assert.deepEqual(
    run.calls.map((c) => c.outcome),
    ['invalid', 'invalid', 'invalid', 'answered'],
  );
  assert.match(run.calls[0]!.result, /not JSON/);
  assert.match(run.calls[1]!.result, /question/);
  assert.match(run.calls[2]!.result, /unknown tool "search"/);
  assert.equal(questions.length, 1);
  const down = scripted([result('', [ask('c1')]), result('', [ask('c2')]), result('ok')], true);
  const failed = await runAdvisorLoop(down.deps, { request, budget: 1, maxRounds: 4 });
  assert.deepEqual(
    failed.calls.map((c) => c.outcome),
    ['failed', 'refused'],
  );
  assert.match(failed.calls[0]!.result, /MR_ERR_UPSTREAM_STATUS/);
});

test('the last round offers no tool, so the loop always ends with an answer', async () => {
  const { deps, workerRequests } = scripted([
    result('', [ask('c1')]),
    result('', [ask('c2')]),
    result('forced answer', [ask('c3')]),
  ]);
  const run = await runAdvisorLoop(deps, { request, budget: 5, maxRounds: 3 });
  assert.equal(run.rounds, 3);
  assert.equal(run.final.text, 'forced answer');
  assert.equal(workerRequests[2]!.tools, undefined);
  assert.equal(run.calls.length, 2);
});

test('the advisor sees the task and the question', () => {
  const messages = advisorMessages('Solve it.', 'what is 6*7?');
  assert.equal(messages[0]!.role, 'system');
  assert.match(String(messages[1]!.content), /Solve it\.[\s\S]*what is 6\*7\?/);
});
