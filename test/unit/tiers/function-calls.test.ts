import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GemmaChatWrapper, Llama3_1ChatWrapper } from 'node-llama-cpp';
import {
  availableFunctions,
  callSyntaxOf,
  parseCall,
} from '../../../src/tiers/providers/local-llama/function-calls.js';

/** Reading `||call: name({...})` back from the local model's text, and which templates it applies to. */
const known = ['ask_advisor'];

test('a complete call parses once its closing parenthesis follows JSON arguments', () => {
  assert.deepEqual(parseCall(' ask_advisor({"question": "17*23?"})', known), {
    state: 'complete',
    call: { type: 'function', function: { name: 'ask_advisor', arguments: '{"question":"17*23?"}' } },
  });
  // A ")" inside a string argument does not end the call.
  assert.deepEqual(parseCall(' ask_advisor({"question": "f(x)?"})', known), {
    state: 'complete',
    call: { type: 'function', function: { name: 'ask_advisor', arguments: '{"question":"f(x)?"}' } },
  });
  assert.equal(parseCall(' ask_advisor()', known).state, 'complete');
});

test('a call still being written is incomplete; a wrong one is invalid', () => {
  for (const partial of [
    '',
    ' ',
    ' ask_',
    ' ask_advisor',
    ' ask_advisor({"quest',
    ' ask_advisor({"q": "f(x',
  ]) {
    assert.equal(parseCall(partial, known).state, 'incomplete', partial);
  }
  assert.deepEqual(parseCall(' search({})', known), {
    state: 'invalid',
    reason: 'unknown function "search"',
  });
  assert.equal(parseCall(' 42 is the answer', known).state, 'invalid');
  assert.equal(parseCall(' 42', known).state, 'invalid');
  assert.equal(parseCall(' ask_advisor(["a"])', known).state, 'incomplete');
});

test('the default call syntax is read; a template with its own syntax is not', () => {
  assert.deepEqual(callSyntaxOf(new GemmaChatWrapper()), { prefix: '||call:' });
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
