import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GemmaChatWrapper, Llama3_1ChatWrapper } from 'node-llama-cpp';
import {
  availableFunctions,
  calledName,
  callNameGrammar,
  callSyntaxOf,
  toolPlanOf,
} from '../../../src/tiers/providers/local-llama/function-calls.js';
import type { FunctionTool } from '../../../src/tiers/tier-model.js';

/** Which functions the local model is shown and must call, and reading its call back. */
const tool = (name: string): FunctionTool => ({
  type: 'function',
  function: { name, parameters: { type: 'object', properties: {} } },
});
const tools = [tool('get_weather'), tool('get_time')];

test('tool_choice becomes a plan: none offers nothing, auto and required offer all, a name forces it', () => {
  assert.equal(toolPlanOf({ tools, tool_choice: 'none' }), undefined);
  assert.equal(toolPlanOf({}), undefined);
  assert.deepEqual(toolPlanOf({ tools }), { offered: tools, mode: 'auto' });
  assert.deepEqual(toolPlanOf({ tools, tool_choice: 'required' }), { offered: tools, mode: 'required' });
  assert.deepEqual(toolPlanOf({ tools, tool_choice: { type: 'function', function: { name: 'get_time' } } }), {
    offered: tools,
    mode: { name: 'get_time' },
  });
  const allowed = {
    type: 'allowed_tools' as const,
    allowed_tools: {
      mode: 'required' as const,
      tools: [{ type: 'function' as const, function: { name: 'get_time' } }],
    },
  };
  assert.deepEqual(toolPlanOf({ tools, tool_choice: allowed }), { offered: [tools[1]], mode: 'required' });
});

test('the name grammar admits the offered names followed by "(", and the name is read back', () => {
  assert.equal(callNameGrammar(['a', 'b_c']), 'root ::= " "? ("a" | "b_c") "("');
  assert.equal(calledName(' get_time('), 'get_time');
  assert.equal(calledName('get_time('), 'get_time');
  assert.equal(calledName(' get_ti'), undefined);
});

test('the default call syntax is read; a template with its own syntax is not', () => {
  assert.deepEqual(callSyntaxOf(new GemmaChatWrapper()), { prefix: '||call:', written: '||call: ' });
  assert.equal(callSyntaxOf(new Llama3_1ChatWrapper()), undefined);
});

test('OpenAI tools become node-llama-cpp function docs', () => {
  const functions = availableFunctions([
    {
      type: 'function',
      function: { name: 'f', description: 'does f', parameters: { type: 'object', properties: {} } },
    },
    { type: 'function', function: { name: 'g' } },
  ]);
  assert.deepEqual(functions, {
    f: { description: 'does f', params: { type: 'object', properties: {} } },
    g: {},
  });
});
