import type { Rng } from '../src/seeded-rng.js';
import {
  authChoice,
  caseOf,
  ENDPOINTS,
  type FuzzCase,
  type FuzzContext,
  json,
  POST_ENDPOINTS,
  pick,
  type RequestSpec,
  requestBytes,
} from './reliability-fuzz-request.js';

/** The fuzzer's requests that are broken on the wire: framing, headers, protocol, and never-finished ones. */
export function framingCase(rng: Rng, ctx: FuzzContext): FuzzCase {
  const endpoint = pick(rng, POST_ENDPOINTS);
  const body = json(endpoint.body?.() ?? {});
  const auth = authChoice(rng, ctx, 0.8);
  const authLines = auth.header ? [auth.header] : [];
  const host = [`Host: 127.0.0.1:${ctx.port}`, 'Connection: close', 'Content-Type: application/json'];
  const chunked = (chunks: string[], ending = '0\r\n\r\n') => Buffer.from(`${chunks.join('')}${ending}`);
  const third = Math.ceil(body.length / 3);
  const goodChunks = [0, 1, 2].map((i) => {
    const piece = body.subarray(i * third, (i + 1) * third).toString('latin1');
    return `${Buffer.byteLength(piece, 'latin1').toString(16)}\r\n${piece}\r\n`;
  });
  const raw = (label: string, head: string[], payload: Buffer, extra: Parameters<typeof caseOf>[4] = {}) =>
    caseOf(
      'framing',
      `POST ${endpoint.path}: ${label}, ${auth.label}`,
      {
        method: 'POST',
        target: endpoint.path,
        bare: true,
        headers: [...host, ...authLines, ...head],
        body: payload,
      },
      ctx,
      extra,
    );
  const framings: (() => FuzzCase)[] = [
    () => raw('chunked', ['Transfer-Encoding: chunked'], chunked(goodChunks)),
    () =>
      raw(
        'chunked, upper-case hex and extensions',
        ['Transfer-Encoding: chunked'],
        chunked(goodChunks.map((c) => c.replace(/^([0-9a-f]+)/, (h) => `${h.toUpperCase()};ext="1"`))),
      ),
    () =>
      raw(
        'chunked with trailers',
        ['Transfer-Encoding: chunked'],
        chunked(goodChunks, '0\r\nX-Trailer: 1\r\n\r\n'),
      ),
    () => raw('chunked, bad size', ['Transfer-Encoding: chunked'], Buffer.from('zz\r\nabc\r\n0\r\n\r\n')),
    () =>
      raw('chunked, negative size', ['Transfer-Encoding: chunked'], Buffer.from('-5\r\nabcde\r\n0\r\n\r\n')),
    () =>
      raw(
        'chunked, huge size',
        ['Transfer-Encoding: chunked'],
        Buffer.from('ffffffffffffffffff\r\nabc\r\n0\r\n\r\n'),
      ),
    () =>
      raw(
        'chunked, bare LF',
        ['Transfer-Encoding: chunked'],
        Buffer.from(`${goodChunks.join('').replaceAll('\r\n', '\n')}0\n\n`),
      ),
    () =>
      raw(
        'chunked and Content-Length',
        ['Transfer-Encoding: chunked', `Content-Length: ${body.length}`],
        chunked(goodChunks),
      ),
    () => raw('Transfer-Encoding gzip, chunked', ['Transfer-Encoding: gzip, chunked'], chunked(goodChunks)),
    () => raw('Transfer-Encoding chunked, gzip', ['Transfer-Encoding: chunked, gzip'], chunked(goodChunks)),
    () =>
      raw(
        'Transfer-Encoding xchunked',
        ['Transfer-Encoding: xchunked', `Content-Length: ${body.length}`],
        body,
      ),
    () =>
      raw(
        'Transfer-Encoding twice',
        ['Transfer-Encoding: chunked', 'Transfer-Encoding: identity'],
        chunked(goodChunks),
      ),
    () =>
      raw(
        'Content-Encoding gzip, plain body',
        [`Content-Length: ${body.length}`, 'Content-Encoding: gzip'],
        body,
      ),
    () => raw('Content-Encoding br', [`Content-Length: ${body.length}`, 'Content-Encoding: br'], body),
    () => raw('Content-Length not a number', ['Content-Length: abc'], body),
    () => raw('Content-Length negative', ['Content-Length: -1'], body),
    () => raw('Content-Length with plus', [`Content-Length: +${body.length}`], body),
    () => raw('Content-Length huge', ['Content-Length: 99999999999999999999'], body),
    () =>
      raw(
        'two Content-Lengths',
        [`Content-Length: ${body.length}`, `Content-Length: ${body.length + 1}`],
        body,
      ),
    () => raw('Content-Length list', [`Content-Length: ${body.length}, ${body.length}`], body),
    () =>
      raw(
        'Content-Length short (rest pipelined)',
        [`Content-Length: ${Math.max(1, body.length - 10)}`],
        body,
      ),
    () => raw('Content-Length zero with body', ['Content-Length: 0'], body),
    () => raw('Expect: 100-continue', ['Expect: 100-continue', `Content-Length: ${body.length}`], body),
    () => raw('Expect: something else', ['Expect: 200-ok', `Content-Length: ${body.length}`], body),
    () => raw('no length at all', [], body),
    () =>
      raw('half-closed after a complete request', [`Content-Length: ${body.length}`], body, {
        halfClose: true,
      }),
    () => raw('half-closed mid-body', [`Content-Length: ${body.length + 100}`], body, { halfClose: true }),
    () =>
      caseOf(
        'framing',
        `POST ${endpoint.path}: body trickled in 5 parts, ${auth.label}`,
        { method: 'POST', target: endpoint.path },
        ctx,
        {
          parts: (() => {
            const whole = requestBytes(
              { method: 'POST', target: endpoint.path, headers: authLines, body },
              ctx,
            );
            const size = Math.ceil(whole.length / 5);
            return [0, 1, 2, 3, 4].map((i) => ({
              bytes: whole.subarray(i * size, (i + 1) * size),
              delayMs: 20,
            }));
          })(),
        },
      ),
    () => {
      // Two requests on one connection: a token on the first must not carry over to the second.
      const first = requestBytes(
        { method: 'GET', target: '/v1/models', headers: [`Authorization: Bearer ${ctx.token}`], bare: false },
        ctx,
      )
        .toString('latin1')
        .replace('Connection: close\r\n', '');
      const second = requestBytes(
        { method: 'GET', target: pick(rng, ['/v1/stats', '/%761/stats', '/admin/policy']) },
        ctx,
      );
      const c = caseOf(
        'framing',
        'pipelined: token, then none',
        { method: 'GET', target: '/v1/stats' },
        ctx,
        {
          parts: [{ bytes: Buffer.concat([Buffer.from(first, 'latin1'), second]) }],
          answers: 2,
        },
      );
      return { ...c, mayPass: [true, false] };
    },
  ];
  return pick(rng, framings)();
}

export function headerCase(rng: Rng, ctx: FuzzContext): FuzzCase {
  const endpoint = pick(rng, ENDPOINTS);
  const auth = authChoice(rng, ctx, 0.6);
  const authLines = auth.header ? [auth.header] : [];
  const headerSets: [string, () => string[], boolean?][] = [
    ['a 20 KB header', () => [`X-Big: ${'h'.repeat(20_000)}`]],
    ['a 70 KB cookie', () => [`Cookie: ${'c=1; '.repeat(14_000)}`]],
    ['300 headers', () => Array.from({ length: 300 }, (_, i) => `X-H${i}: ${i}`)],
    ['3000 headers', () => Array.from({ length: 3_000 }, (_, i) => `X${i}: 1`)],
    ['space in a header name', () => ['Bad Name: 1']],
    ['colon-less header line', () => ['NoColonHere']],
    ['NUL in a header value', () => ['X-Nul: a\u0000b']],
    ['CR in a header value', () => ['X-Cr: a\rb']],
    ['non-ASCII header value', () => ['X-Text: caf\u00e9 \u00ff']],
    ['obs-fold continuation', () => ['X-Fold: a', ' continued']],
    ['two Host headers', () => ['Host: evil.example']],
    [
      'x-forwarded-for spoofed',
      () => ['X-Forwarded-For: 8.8.8.8', 'X-Real-IP: 8.8.8.8', 'Forwarded: for=8.8.8.8'],
    ],
    ['override: threshold NaN', () => ['x-mechroute-threshold: NaN']],
    ['override: threshold 1e999', () => ['x-mechroute-threshold: 1e999']],
    ['override: threshold twice', () => ['x-mechroute-threshold: 0.1', 'x-mechroute-threshold: 0.9']],
    ['override: threshold huge', () => [`x-mechroute-threshold: ${'9'.repeat(5000)}`]],
    ['override: policy nonsense', () => ['x-mechroute-policy: nonsense']],
    ['override: max cost negative', () => ['x-mechroute-max-cost: -5']],
    ['override: lambda hex', () => ['x-mechroute-lambda: 0x10']],
    ['mode: steps', () => ['x-mechroute-mode: steps']],
    ['mode: advisor', () => ['x-mechroute-mode: advisor']],
    ['mode: garbage', () => ['x-mechroute-mode: \u00e9\u00e9']],
    ['step threshold 2', () => ['x-mechroute-mode: steps', 'x-mechroute-step-threshold: 2']],
    ['x-request-id 100 KB', () => [`X-Request-Id: ${'r'.repeat(100_000)}`]],
    [
      'Upgrade: websocket',
      () => [
        'Connection: Upgrade',
        'Upgrade: websocket',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
      ],
    ],
    [
      'Upgrade: h2c',
      () => [
        'Connection: Upgrade, HTTP2-Settings',
        'Upgrade: h2c',
        'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA',
      ],
    ],
    ['Accept-Encoding gzip', () => ['Accept-Encoding: gzip, br, deflate']],
    ['Accept: text/html', () => ['Accept: text/html']],
    ['Transfer-Encoding on a GET', () => ['Transfer-Encoding: chunked']],
  ];
  const [label, make] = pick(rng, headerSets);
  const spec: RequestSpec = {
    method: endpoint.method,
    target: endpoint.path,
    headers: [...authLines, ...make()],
    ...(endpoint.body ? { body: json(endpoint.body()) } : {}),
  };
  if (label === 'Transfer-Encoding on a GET') spec.body = Buffer.from('0\r\n\r\n');
  return caseOf('headers', `${endpoint.method} ${endpoint.path}: ${label}, ${auth.label}`, spec, ctx);
}

export function protocolCase(rng: Rng, ctx: FuzzContext): FuzzCase {
  const auth = authChoice(rng, ctx, 0.3);
  const authLines = auth.header ? [auth.header] : [];
  const path = pick(rng, ['/v1/stats', '/%761/stats', '/admin/policy', '/v1/models', '/healthz']);
  const rawCase = (label: string, bytes: string | Buffer, target = path) => {
    const buffer = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
    const c = caseOf('protocol', `${label}, ${auth.label}`, { method: 'GET', target }, ctx, {
      parts: [{ bytes: buffer }],
    });
    return c;
  };
  const host = `Host: 127.0.0.1:${ctx.port}\r\n`;
  const auths = authLines.map((l) => `${l}\r\n`).join('');
  const protocols: (() => FuzzCase)[] = [
    () => rawCase('HTTP/1.0', `GET ${path} HTTP/1.0\r\n${auths}\r\n`),
    () => rawCase('HTTP/1.0 keep-alive', `GET ${path} HTTP/1.0\r\nConnection: keep-alive\r\n${auths}\r\n`),
    () => rawCase('HTTP/0.9 request line', `GET ${path}\r\n\r\n`),
    () => rawCase('HTTP/2.0 request line', `GET ${path} HTTP/2.0\r\n${host}${auths}\r\n`),
    () => rawCase('HTTP/1.2', `GET ${path} HTTP/1.2\r\n${host}${auths}\r\n`),
    () => rawCase('HTTP/9.9', `GET ${path} HTTP/9.9\r\n${host}${auths}\r\n`),
    () =>
      rawCase(
        'h2 preface',
        'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\u0000\u0000\u0000\u0004\u0000\u0000\u0000\u0000\u0000',
        '*',
      ),
    () => rawCase('TLS ClientHello', Buffer.from('16030100a5010000a10303', 'hex'), '*'),
    () =>
      rawCase(
        'bare LF line ends',
        `GET ${path} HTTP/1.1\n${host.trim()}\n${auths.replaceAll('\r\n', '\n')}Connection: close\n\n`,
      ),
    () =>
      rawCase(
        'leading empty lines',
        `\r\n\r\nGET ${path} HTTP/1.1\r\n${host}${auths}Connection: close\r\n\r\n`,
      ),
    () =>
      rawCase(
        'tabs in the request line',
        `GET\t${path}\tHTTP/1.1\r\n${host}${auths}Connection: close\r\n\r\n`,
      ),
    () =>
      rawCase(
        'two spaces in the request line',
        `GET  ${path}  HTTP/1.1\r\n${host}${auths}Connection: close\r\n\r\n`,
      ),
    () => rawCase('no Host header', `GET ${path} HTTP/1.1\r\n${auths}Connection: close\r\n\r\n`),
    () =>
      rawCase(
        'CONNECT authority-form',
        `CONNECT 127.0.0.1:${ctx.port} HTTP/1.1\r\n${host}${auths}\r\n`,
        '127.0.0.1',
      ),
    () => rawCase('OPTIONS *', `OPTIONS * HTTP/1.1\r\n${host}${auths}Connection: close\r\n\r\n`, '*'),
    () => rawCase('random bytes', Buffer.from(Array.from({ length: 200 }, () => rng.int(256))), '*'),
    () =>
      rawCase(
        'space before a header name',
        `GET ${path} HTTP/1.1\r\n ${host}${auths}Connection: close\r\n\r\n`,
      ),
    () =>
      rawCase(
        'absolute-form with a mismatching Host',
        `GET http://127.0.0.1:${ctx.port}${path} HTTP/1.1\r\nHost: evil.example\r\n${auths}Connection: close\r\n\r\n`,
        `http://127.0.0.1:${ctx.port}${path}`,
      ),
  ];
  return pick(rng, protocols)();
}

/** Requests the client never finishes: only the server's receive timeout can end them. */
export function slowCase(rng: Rng, ctx: FuzzContext): FuzzCase {
  const endpoint = pick(rng, POST_ENDPOINTS);
  const body = json(endpoint.body?.() ?? {});
  const head = (lines: string[]) =>
    Buffer.from(
      `POST ${endpoint.path} HTTP/1.1\r\nHost: 127.0.0.1:${ctx.port}\r\n${lines.map((l) => `${l}\r\n`).join('')}`,
    );
  const auth = `Authorization: Bearer ${ctx.token}`;
  const slow: [string, Buffer][] = [
    ['headers never finished', head(['X-Slow: 1'])],
    [
      'body shorter than Content-Length',
      Buffer.concat([
        head([auth, 'Content-Type: application/json', `Content-Length: ${body.length + 50}`, '']),
        body,
      ]),
    ],
    [
      'chunked body never ended',
      Buffer.concat([
        head([auth, 'Content-Type: application/json', 'Transfer-Encoding: chunked', '']),
        Buffer.from('5\r\n{"a":\r\n'),
      ]),
    ],
  ];
  const [label, bytes] = pick(rng, slow);
  return caseOf('slow', `POST ${endpoint.path}: ${label}`, { method: 'POST', target: endpoint.path }, ctx, {
    parts: [{ bytes }],
    incomplete: true,
  });
}
