import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toGrammarSchema } from '../../../src/tiers/providers/local-llama/json-schema-grammar.js';

/** JSON Schema → node-llama-cpp's grammar subset, with every constraint it cannot hold reported. */

test('what the grammar holds converts as it is; annotations constrain nothing and go', () => {
  const { schema, unenforced } = toGrammarSchema({
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Forecast',
    type: 'object',
    description: 'A forecast',
    properties: {
      city: { type: 'string', minLength: 1, maxLength: 40, examples: ['Paris'] },
      when: { type: 'string', format: 'date' },
      temp: { type: 'number' },
      sky: { enum: ['sun', 'rain'] },
      unit: { const: 'C' },
      tags: { type: 'array', items: { type: 'string' }, maxItems: 3 },
      note: { type: ['string', 'null'], default: null },
    },
    required: ['city'],
    additionalProperties: false,
  });
  assert.deepEqual(unenforced, []);
  assert.deepEqual(schema, {
    type: 'object',
    description: 'A forecast',
    properties: {
      city: { type: 'string', minLength: 1, maxLength: 40 },
      when: { type: 'string', format: 'date' },
      temp: { type: 'number' },
      sky: { enum: ['sun', 'rain'] },
      unit: { const: 'C' },
      tags: { type: 'array', items: { type: 'string' }, maxItems: 3 },
      note: { type: ['string', 'null'] },
    },
    additionalProperties: false,
  });
});

test('anyOf, nullable objects and references are rewritten into the subset', () => {
  const { schema, unenforced } = toGrammarSchema({
    type: 'object',
    properties: {
      a: { anyOf: [{ type: 'integer' }, { $ref: '#/definitions/B' }] },
      b: { type: ['object', 'null'], properties: { x: { type: 'boolean' } } },
    },
    definitions: { B: { type: 'string' } },
  });
  assert.deepEqual(unenforced, []);
  assert.deepEqual(schema, {
    type: 'object',
    properties: {
      a: { oneOf: [{ type: 'integer' }, { $ref: '#/$defs/B' }] },
      b: { oneOf: [{ type: 'object', properties: { x: { type: 'boolean' } } }, { type: 'null' }] },
    },
    $defs: { B: { type: 'string' } },
  });
});

test('an empty schema is any JSON value, not the null node-llama-cpp would make of it', () => {
  const { schema } = toGrammarSchema({ type: 'object', properties: { any: {} } });
  const any = (schema as { properties: Record<string, unknown> }).properties.any as { oneOf: unknown[] };
  assert.equal(any.oneOf.length, 3);
});

test('constraints the grammar cannot hold are reported by path, never dropped unsaid', () => {
  const { unenforced } = toGrammarSchema({
    type: 'object',
    properties: {
      n: { type: 'integer', minimum: 1, multipleOf: 2 },
      code: { type: 'string', pattern: '^[A-Z]{3}$' },
      mail: { type: 'string', format: 'email' },
      both: { allOf: [{ type: 'string' }] },
      list: { type: 'array', uniqueItems: true },
    },
    patternProperties: { '^x-': { type: 'string' } },
  });
  assert.deepEqual(unenforced.sort(), [
    '$.both: allOf',
    '$.code: pattern',
    '$.list: uniqueItems',
    '$.mail: format email',
    '$.n: minimum',
    '$.n: multipleOf',
    '$: patternProperties',
  ]);
});
