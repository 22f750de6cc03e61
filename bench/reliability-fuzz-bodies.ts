import type { Rng } from '../src/seeded-rng.js';
import { chatBody, type Endpoint, json, pick } from './reliability-fuzz-request.js';

/** The fuzzer's hostile JSON bodies: deep, huge, badly encoded, malformed and mistyped. */
const nested = (depth: number, open: string, close: string, inner = '1') =>
  `${open.repeat(depth)}${inner}${close.repeat(depth)}`;
const nestedObject = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

/** A hostile JSON body (as bytes) for `endpoint`, with what it is. */
export function hostileBody(rng: Rng, endpoint: Endpoint): { body: Buffer; label: string } {
  const valid = (endpoint.body?.() ?? {}) as Record<string, unknown>;
  const withField = (name: string, raw: string) => {
    const text = JSON.stringify(valid);
    return Buffer.from(`${text.slice(0, -1)}${text.length > 2 ? ',' : ''}"${name}":${raw}}`);
  };
  const depth = pick(rng, [65, 100, 1_000, 6_000, 50_000]);
  const bodies: [string, () => Buffer][] = [
    ['deep arrays', () => Buffer.from(nested(depth, '[', ']'))],
    ['deep objects', () => Buffer.from(nestedObject(depth))],
    ['deep unknown field', () => withField('extra', nested(depth, '[', ']'))],
    [
      'deep field in a message',
      () =>
        Buffer.from(
          `{"model":"mechroute","messages":[{"role":"user","content":"hi","x":${nested(depth, '[', ']')}}]}`,
        ),
    ],
    ['deep mechroute field', () => withField('mechroute', nestedObject(depth))],
    ['nesting at the limit (64)', () => withField('extra', nested(63, '[', ']'))],
    ['nesting at the limit + 1', () => withField('extra', nested(65, '[', ']'))],
    ['brackets inside strings', () => withField('extra', JSON.stringify('['.repeat(10_000)))],
    ['escaped quotes and brackets', () => withField('extra', JSON.stringify('\\"['.repeat(3_000)))],
    ['huge prompt (900 KB)', () => json({ ...valid, prompt: 'word '.repeat(180_000), messages: undefined })],
    [
      'huge message content (900 KB)',
      () =>
        json({ model: 'mixtral-8x7b-instruct', messages: [{ role: 'user', content: 'x'.repeat(900_000) }] }),
    ],
    ['over the body limit (1.5 MB)', () => json({ ...valid, extra: 'y'.repeat(1_500_000) })],
    [
      'many messages (20,000)',
      () =>
        json({
          model: 'mixtral-8x7b-instruct',
          messages: Array.from({ length: 20_000 }, () => ({ role: 'user', content: 'a' })),
          max_tokens: 2,
        }),
    ],
    ['huge model name', () => json({ ...chatBody(), model: 'm'.repeat(500_000) })],
    ['huge request_id', () => json({ request_id: 'r'.repeat(900_000), success: true })],
    ['huge field name', () => Buffer.from(`{"${'k'.repeat(300_000)}":1}`)],
    ['many fields', () => json(Object.fromEntries(Array.from({ length: 30_000 }, (_, i) => [`f${i}`, i])))],
    [
      'invalid UTF-8 in a string',
      () =>
        Buffer.concat([
          Buffer.from('{"model":"mechroute","messages":[{"role":"user","content":"'),
          Buffer.from([0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80]),
          Buffer.from('"}]}'),
        ]),
    ],
    [
      'invalid UTF-8 in a key',
      () => Buffer.concat([Buffer.from('{"'), Buffer.from([0xc3, 0x28]), Buffer.from('":1}')]),
    ],
    [
      'lone surrogate escapes',
      () =>
        Buffer.from(
          `{"prompt":"\\ud800\\udfff\\ud800 x","model":"mechroute","messages":[{"role":"user","content":"\\udc00"}]}`,
        ),
    ],
    [
      'NUL and control characters',
      () => json({ ...valid, prompt: '\u0000\u0001\u001b[31m\u2028\u2029', model: 'mechroute\u0000' }),
    ],
    ['UTF-8 BOM', () => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), json(valid)])],
    ['UTF-16LE', () => Buffer.from(JSON.stringify(valid), 'utf16le')],
    [
      'UTF-16 BOM',
      () => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(JSON.stringify(valid), 'utf16le')]),
    ],
    [
      'latin-1 bytes',
      () =>
        Buffer.from(
          `{"prompt":"caf\u00e9 na\u00efve","model":"mechroute","messages":[{"role":"user","content":"\u00e9"}]}`,
          'latin1',
        ),
    ],
    ['truncated JSON', () => json(valid).subarray(0, Math.max(1, rng.int(JSON.stringify(valid).length)))],
    ['trailing garbage', () => Buffer.concat([json(valid), Buffer.from('}{]garbage')])],
    ['two documents', () => Buffer.concat([json(valid), json(valid)])],
    ['comments', () => Buffer.from(`// hi\n${JSON.stringify(valid)}`)],
    ['single quotes', () => Buffer.from(JSON.stringify(valid).replaceAll('"', "'"))],
    [
      'NaN and Infinity',
      () =>
        Buffer.from(
          '{"model":"mechroute","messages":[{"role":"user","content":"x"}],"max_tokens":NaN,"temperature":Infinity}',
        ),
    ],
    [
      'huge numbers',
      () =>
        Buffer.from(
          `{"model":"mechroute","messages":[{"role":"user","content":"x"}],"max_tokens":1e400,"seed":${'9'.repeat(400)},"temperature":-1e-400}`,
        ),
    ],
    ['fractional max_tokens', () => json({ ...chatBody(), max_tokens: 1.5 })],
    [
      'numbers as strings',
      () => json({ ...chatBody(), max_tokens: '5', temperature: '0.5', stream: 'true' }),
    ],
    [
      'duplicate keys',
      () =>
        Buffer.from(
          '{"model":"nope","model":"mechroute","messages":[],"messages":[{"role":"user","content":"x"}]}',
        ),
    ],
    [
      '__proto__ key',
      () =>
        Buffer.from(
          '{"__proto__":{"admin":true,"tokens":["x"]},"model":"mechroute","messages":[{"role":"user","content":"x"}]}',
        ),
    ],
    ['constructor.prototype', () => Buffer.from('{"constructor":{"prototype":{"polluted":1}},"prompt":"x"}')],
    ['empty body', () => Buffer.alloc(0)],
    ['whitespace only', () => Buffer.from('   \n\t ')],
    ['null', () => Buffer.from('null')],
    ['array', () => Buffer.from('[]')],
    ['string', () => Buffer.from('"hello"')],
    ['number', () => Buffer.from('42')],
    ['messages is an object', () => json({ model: 'mechroute', messages: { role: 'user', content: 'x' } })],
    ['messages is a string', () => json({ model: 'mechroute', messages: 'hello' })],
    ['unknown role', () => json({ model: 'mechroute', messages: [{ role: 'root', content: 'x' }] })],
    ['content is a number', () => json({ model: 'mechroute', messages: [{ role: 'user', content: 5 }] })],
    [
      'content parts, hostile',
      () =>
        json({
          model: 'mixtral-8x7b-instruct',
          messages: [
            {
              role: 'user',
              content: [
                { type: 'image_url', image_url: { url: 'file:///etc/passwd' } },
                { type: 'text', text: 5 },
              ],
            },
          ],
        }),
    ],
    ['model is a number', () => json({ model: 123, messages: [{ role: 'user', content: 'x' }] })],
    [
      'model names nothing',
      () => json({ model: '../../etc/passwd', messages: [{ role: 'user', content: 'x' }] }),
    ],
    ['stop with 5 strings', () => json({ ...chatBody(), stop: ['a', 'b', 'c', 'd', 'e'] })],
    ['negative max_tokens', () => json({ ...chatBody(), max_tokens: -1 })],
    ['temperature out of range', () => json({ ...chatBody(), temperature: 99 })],
    ['mechroute is an array', () => json({ ...valid, mechroute: [1, 2] })],
    [
      'mechroute overrides, hostile',
      () =>
        json({
          ...valid,
          mechroute: pick(rng, [
            { threshold: 'x' },
            { threshold: 7 },
            { policy: 'nonsense' },
            { max_cost_usd: -1 },
            { lambda: Number.MAX_VALUE },
            { tier: 'gpt-4' },
            { __proto__: { x: 1 } },
          ]),
        }),
    ],
    [
      'stream with tools in advisor mode',
      () => json({ ...chatBody('mechroute'), stream: true, tools: [{}] }),
    ],
    ['feedback with extra fields', () => json({ request_id: 'req-x', success: true, admin: true })],
    ['feedback success is a string', () => json({ request_id: 'req-x', success: 'yes' })],
    ['prompt and messages both', () => json({ prompt: 'x', messages: [{ role: 'user', content: 'x' }] })],
    ['valid body', () => json(valid)],
  ];
  const [label, make] = pick(rng, bodies);
  return { body: make(), label };
}
