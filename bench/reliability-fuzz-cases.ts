import { METHODS } from 'node:http';
import type { Rng } from '../src/seeded-rng.js';
import { hostileBody } from './reliability-fuzz-bodies.js';
import {
  authChoice,
  caseOf,
  ENDPOINTS,
  type Family,
  type FuzzCase,
  type FuzzContext,
  json,
  POST_ENDPOINTS,
  PUBLIC_PATHS,
  pick,
} from './reliability-fuzz-request.js';
import { framingCase, headerCase, protocolCase, slowCase } from './reliability-fuzz-wire.js';

export type { FuzzCase, FuzzContext } from './reliability-fuzz-request.js';

/**
 * The hostile requests of the fuzzer, drawn from a seeded generator so a run can be repeated exactly:
 * every endpoint under encoded and absolute-form spellings, every HTTP method, deep and huge JSON, bad
 * encodings and content types, broken framing, bad headers and protocol garbage. Each case says
 * whether it carries a valid token (for counting auth bypasses) and how long the server may take.
 */
/** Percent-encodes a random share of a path's letters (upper or lower hex), never its slashes. */
function encodeSome(rng: Rng, path: string, share: number): string {
  let out = '';
  for (const ch of path) {
    if (ch !== '/' && rng.next() < share) {
      const hex = ch.charCodeAt(0).toString(16).padStart(2, '0');
      out += `%${rng.next() < 0.5 ? hex : hex.toUpperCase()}`;
    } else out += ch;
  }
  return out === path ? path.replace(/[a-z]/, (c) => `%${c.charCodeAt(0).toString(16)}`) : out;
}

/** Every way the fuzzer spells one path (the request target as sent). */
function spell(rng: Rng, path: string, ctx: FuzzContext): { target: string; label: string } {
  const host = `127.0.0.1:${ctx.port}`;
  const spellings: [string, () => string][] = [
    ['plain', () => path],
    ['percent-encoded letters', () => encodeSome(rng, path, 0.3)],
    [
      'first letter encoded',
      () => path.replace(/^\/(.)/, (_, c: string) => `/%${c.charCodeAt(0).toString(16)}`),
    ],
    ['every letter encoded', () => encodeSome(rng, path, 1)],
    ['double-encoded', () => encodeSome(rng, path, 0.5).replaceAll('%', '%25')],
    ['absolute-form', () => `http://${host}${path}`],
    ['absolute-form, encoded', () => `http://${host}${encodeSome(rng, path, 0.4)}`],
    ['absolute-form, other host', () => `http://evil.example${path}`],
    ['absolute-form, upper-case scheme', () => `HTTP://${host}${path}`],
    ['absolute-form, https', () => `https://${host}${path}`],
    ['absolute-form, userinfo', () => `http://user:pass@${host}${path}`],
    ['double slash', () => `/${path}`],
    ['inner double slash', () => path.replace(/\/(?=[^/]*$)/, '//')],
    ['trailing slash', () => `${path}/`],
    ['dot segment', () => `/.${path}`],
    ['dot-dot segment', () => `/x/..${path}`],
    ['encoded dot-dot', () => `/x/%2e%2e${path}`],
    ['encoded slash', () => path.replaceAll('/', '%2f')],
    ['backslashes', () => path.replaceAll('/', '\\')],
    ['upper case', () => path.toUpperCase()],
    ['matrix parameter', () => `${path};x=1`],
    ['query', () => `${path}?a=1&b=%ZZ&c=${'x'.repeat(100)}`],
    ['fragment', () => `${path}#frag`],
    ['NUL byte', () => `${path}%00`],
    ['raw NUL byte', () => `${path}\u0000`],
    ['bad escape', () => `${path}%zz`],
    ['overlong UTF-8 slash', () => path.replace(/\/(?=[^/]*$)/, '%c0%af')],
    ['homoglyph', () => path.replace('s', '\u0455')],
    ['long path', () => `${path}/${'a'.repeat(4000)}`],
    ['very long path', () => `/${'b'.repeat(12_000)}${path}`],
    ['empty', () => ''],
    ['asterisk', () => '*'],
  ];
  const [label, make] = pick(rng, spellings);
  return { target: make(), label };
}

const ALL_METHODS = [...METHODS, 'get', 'FOO', 'G\u00c9T', 'GET\u0000', 'X'.repeat(200)];

function pathCase(rng: Rng, ctx: FuzzContext): FuzzCase {
  const endpoint = pick(rng, ENDPOINTS);
  const { target, label } = spell(rng, endpoint.path, ctx);
  const auth = authChoice(rng, ctx, 0.3);
  return caseOf(
    'path',
    `${endpoint.method} ${endpoint.path}: ${label}, ${auth.label}`,
    {
      method: endpoint.method,
      target,
      headers: auth.header ? [auth.header] : [],
      ...(endpoint.body ? { body: json(endpoint.body()) } : {}),
    },
    ctx,
  );
}

function methodCase(rng: Rng, ctx: FuzzContext): FuzzCase {
  const endpoint = pick(rng, ENDPOINTS);
  const method = pick(rng, ALL_METHODS);
  const auth = authChoice(rng, ctx, 0.4);
  const { target, label } =
    rng.next() < 0.7 ? { target: endpoint.path, label: 'plain' } : spell(rng, endpoint.path, ctx);
  const withBody = rng.next() < 0.5;
  return caseOf(
    'method',
    `${method.slice(0, 12)} ${endpoint.path}: ${label}, ${auth.label}${withBody ? ', with body' : ''}`,
    {
      method,
      target,
      headers: auth.header ? [auth.header] : [],
      ...(withBody ? { body: json(endpoint.body?.() ?? { x: 1 }) } : {}),
    },
    ctx,
  );
}

function bodyCase(rng: Rng, ctx: FuzzContext): FuzzCase {
  const endpoint = pick(rng, POST_ENDPOINTS);
  const { body, label } = hostileBody(rng, endpoint);
  const auth = authChoice(rng, ctx, 0.85);
  return caseOf(
    'body',
    `POST ${endpoint.path}: ${label}, ${auth.label}`,
    { method: 'POST', target: endpoint.path, headers: auth.header ? [auth.header] : [], body },
    ctx,
  );
}

const CONTENT_TYPES: (string | null)[] = [
  null,
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'application/json; charset=utf-16',
  'application/json; charset=iso-8859-1',
  'application/json; charset="utf-8"',
  'APPLICATION/JSON',
  'application/jsonp',
  'application/json-patch+json',
  'application/vnd.api+json',
  'application/json, text/plain',
  'application/*',
  '*/*',
  ';;;',
  '',
  `application/json; ${'p=1; '.repeat(500)}`,
  'application/json\u0000',
  'application/\u00e9json',
];

function contentTypeCase(rng: Rng, ctx: FuzzContext): FuzzCase {
  const endpoint = pick(rng, POST_ENDPOINTS);
  const contentType = pick(rng, CONTENT_TYPES);
  const auth = authChoice(rng, ctx, 0.8);
  const twice = rng.next() < 0.1;
  return caseOf(
    'content-type',
    `POST ${endpoint.path}: content-type ${JSON.stringify(contentType?.slice(0, 40) ?? 'none')}${twice ? ' (twice)' : ''}, ${auth.label}`,
    {
      method: 'POST',
      target: endpoint.path,
      headers: [...(auth.header ? [auth.header] : []), ...(twice ? ['Content-Type: text/plain'] : [])],
      body: json(endpoint.body?.() ?? {}),
      contentType,
    },
    ctx,
  );
}

function authCase(rng: Rng, ctx: FuzzContext): FuzzCase {
  const endpoint = pick(
    rng,
    ENDPOINTS.filter((e) => !PUBLIC_PATHS.has(e.path)),
  );
  const variants: [string, string[]][] = [
    ['lower-case scheme', [`Authorization: bearer ${ctx.token}`]],
    ['upper-case scheme', [`Authorization: BEARER ${ctx.token}`]],
    ['two spaces', [`Authorization: Bearer  ${ctx.token}`]],
    ['tab', [`Authorization: Bearer\t${ctx.token}`]],
    ['trailing space', [`Authorization: Bearer ${ctx.token} `]],
    ['two tokens', [`Authorization: Bearer ${ctx.token} ${ctx.token}`]],
    ['comma list', [`Authorization: Bearer ${ctx.token}, Bearer x`]],
    ['valid then invalid header', [`Authorization: Bearer ${ctx.token}`, 'Authorization: Bearer nope']],
    ['invalid then valid header', ['Authorization: Bearer nope', `Authorization: Bearer ${ctx.token}`]],
    ['token in the query', []],
    ['token in a cookie', [`Cookie: token=${ctx.token}`]],
    ['1 MB of token', [`Authorization: Bearer ${'t'.repeat(15_000)}`]],
    ['unicode token', ['Authorization: Bearer \u00e9\u00e9\u00e9']],
  ];
  const [label, headers] = pick(rng, variants);
  const target =
    label === 'token in the query' ? `${endpoint.path}?access_token=${ctx.token}` : endpoint.path;
  const c = caseOf(
    'auth',
    `${endpoint.method} ${endpoint.path}: ${label}`,
    { method: endpoint.method, target, headers, ...(endpoint.body ? { body: json(endpoint.body()) } : {}) },
    ctx,
  );
  // A token outside the Authorization header is not a credential.
  return label === 'token in the query' || label === 'token in a cookie' ? { ...c, mayPass: [false] } : c;
}

const FAMILIES: [Family, number, (rng: Rng, ctx: FuzzContext) => FuzzCase][] = [
  ['path', 0.24, pathCase],
  ['method', 0.12, methodCase],
  ['body', 0.24, bodyCase],
  ['content-type', 0.08, contentTypeCase],
  ['framing', 0.1, framingCase],
  ['headers', 0.1, headerCase],
  ['auth', 0.06, authCase],
  ['protocol', 0.06, protocolCase],
];

/**
 * `count` cases in a fixed order for `seed`, plus `slowCount` that never finish (they hold a connection
 * until the server's receive timeout, so there are only a few).
 */
export function fuzzCases(rng: Rng, ctx: FuzzContext, count: number, slowCount: number): FuzzCase[] {
  const total = FAMILIES.reduce((s, [, w]) => s + w, 0);
  const cases: FuzzCase[] = [];
  for (let i = 0; i < count; i++) {
    const draw = rng.next() * total;
    let below = 0;
    const family =
      FAMILIES.find(([, w]) => {
        below += w;
        return draw < below;
      }) ?? FAMILIES[0]!;
    cases.push(family[2](rng, ctx));
  }
  for (let i = 0; i < slowCount; i++) cases.push(slowCase(rng, ctx));
  return cases;
}
