import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ASK_ADVISOR_TOOL } from '../../src/advisor/advisor-loop.js';
import type { LocalLlamaModel } from '../../src/tiers/providers/local-llama/local-llama-model.js';
import type { ChatMessage } from '../../src/tiers/tier-model.js';
import { createUpstreamModel } from '../support/openai-upstream.js';

/**
 * Function calling on the real local model (Gemma 3 270M): tools are documented in its prompt with the
 * chat template's call syntax, an earlier call and its result are rendered back in it, and a call the
 * model writes comes back as an OpenAI tool call. The 270M model rarely calls a tool when asked, but
 * with one call and its result in the history it writes the next one itself (greedy decoding).
 */
let model: LocalLlamaModel;
before(async () => {
  model = await createUpstreamModel(1);
});
after(async () => {
  await model?.dispose();
});

const history: ChatMessage[] = [
  { role: 'user', content: 'What is 17*23?' },
  {
    role: 'assistant',
    content: null,
    tool_calls: [
      { id: 'c1', type: 'function', function: { name: 'ask_advisor', arguments: '{"question":"17*23?"}' } },
    ],
  },
  { role: 'tool', tool_call_id: 'c1', content: '391' },
];

test('a call the model writes comes back as an OpenAI tool call', async () => {
  const result = await model.generate({
    messages: history,
    tools: [ASK_ADVISOR_TOOL],
    max_tokens: 80,
    temperature: 0,
  });
  assert.deepEqual(result.warnings, []);
  assert.equal(result.finish_reason, 'tool_calls', result.text);
  assert.equal(result.tool_calls?.length, 1);
  const call = result.tool_calls![0]!;
  assert.ok(call.type === 'function');
  assert.equal(call.function.name, 'ask_advisor');
  assert.match(call.id, /^call_\w+$/);
  assert.equal(typeof JSON.parse(call.function.arguments), 'object');
  // The call syntax itself never reaches the answer text.
  assert.doesNotMatch(result.text, /\|\|call/);
});

test('without tools, or with tool_choice "none", the same history is plain text', async () => {
  for (const extra of [{}, { tools: [ASK_ADVISOR_TOOL], tool_choice: 'none' as const }]) {
    const result = await model.generate({ messages: history, max_tokens: 12, temperature: 0, ...extra });
    assert.equal(result.tool_calls, undefined);
    assert.notEqual(result.finish_reason, 'tool_calls');
    // The earlier call was rendered inside the model turn, not as a stray user message.
    assert.deepEqual(result.warnings, []);
  }
});
