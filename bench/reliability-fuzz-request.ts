import type { Rng } from '../src/seeded-rng.js';
import type { RawPart } from '../test/support/raw-http.js';

/**
 * The building blocks of the fuzzer's requests (reliability-fuzz-cases.ts): what a case is, the
 * endpoints, request bytes as written, tokens, and how a case records whether a 2xx may come back.
 */
export interface FuzzCase {
  family: Family;
  /** What was done to the request, for the report. */
  label: string;
  parts: RawPart[];
  /** The request as the first bytes went out (bounded), for examples. */
  preview: string;
  /**
   * Per answer expected (pipelined requests get one each): may a 2xx come back — the request carries a
   * valid bearer token, or its target names a public route (health, readiness, metrics) once decoded.
   */
  mayPass: boolean[];
  head: boolean;
  halfClose: boolean;
  /** The request is never completed by the client: only the server's receive timeout can end it. */
  incomplete: boolean;
  /** Answers to read (pipelined requests get one each). */
  answers: number;
}

export type Family =
  | 'path'
  | 'method'
  | 'body'
  | 'content-type'
  | 'framing'
  | 'headers'
  | 'auth'
  | 'protocol'
  | 'slow';

export interface FuzzContext {
  port: number;
  token: string;
}

export interface Endpoint {
  method: string;
  path: string;
  body?: () => unknown;
}

export const PROMPT =
  'Question: Which gas do plants absorb from the air?\nA. Oxygen\nB. Carbon dioxide\nAnswer:';
export const chatBody = (model = 'mixtral-8x7b-instruct') => ({
  model,
  messages: [{ role: 'user', content: PROMPT }],
  max_tokens: 4,
});

export const ENDPOINTS: readonly Endpoint[] = [
  { method: 'GET', path: '/healthz' },
  { method: 'GET', path: '/readyz' },
  { method: 'GET', path: '/metrics' },
  { method: 'GET', path: '/v1/models' },
  { method: 'GET', path: '/v1/models/mechroute' },
  { method: 'GET', path: '/v1/stats' },
  { method: 'POST', path: '/v1/route', body: () => ({ prompt: PROMPT }) },
  { method: 'POST', path: '/v1/chat/completions', body: () => chatBody() },
  { method: 'POST', path: '/v1/feedback', body: () => ({ request_id: 'req-unknown', success: true }) },
  { method: 'GET', path: '/admin/policy' },
  { method: 'POST', path: '/admin/policy/rollback', body: () => ({}) },
];
export const POST_ENDPOINTS = ENDPOINTS.filter((e) => e.method === 'POST');
export const PUBLIC_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/** The path a target names once its scheme, authority and query are stripped and it is percent-decoded. */
export function decodedPath(target: string): string {
  let path = target.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '');
  path = path.split(/[?#]/)[0] ?? '';
  // Decoding repeatedly catches double encoding too; a malformed escape stays as it is.
  for (let i = 0; i < 3; i++) {
    try {
      const next = decodeURIComponent(path);
      if (next === path) break;
      path = next;
    } catch {
      break;
    }
  }
  return path;
}

/** Whether an Authorization header of the request holds the token as the server reads it. */
function carriesToken(request: Buffer, token: string): boolean {
  const head =
    request
      .toString('latin1')
      .replace(/^(\r?\n)+/, '')
      .split(/\r?\n\r?\n/)[0] ?? '';
  return head
    .split(/\r?\n/)
    .some((line) => /^authorization:[ \t]*bearer[ \t]+(\S+)[ \t]*$/i.exec(line)?.[1] === token);
}

export const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.int(items.length)]!;

export interface RequestSpec {
  method: string;
  target: string;
  version?: string;
  /** Header lines as written (name: value), before the defaults. */
  headers?: string[];
  body?: Buffer;
  /** Leave out the defaults: Host, Connection, Content-Length, Content-Type. */
  bare?: boolean;
  contentType?: string | null;
  lineEnd?: string;
}

export function requestBytes(spec: RequestSpec, ctx: FuzzContext): Buffer {
  const eol = spec.lineEnd ?? '\r\n';
  const lines = [`${spec.method} ${spec.target} ${spec.version ?? 'HTTP/1.1'}`];
  if (!spec.bare) {
    lines.push(`Host: 127.0.0.1:${ctx.port}`, 'Connection: close');
    if (spec.body !== undefined) {
      if (spec.contentType !== null) lines.push(`Content-Type: ${spec.contentType ?? 'application/json'}`);
      lines.push(`Content-Length: ${spec.body.length}`);
    }
  }
  lines.push(...(spec.headers ?? []));
  const head = Buffer.from(`${lines.join(eol)}${eol}${eol}`, 'latin1');
  return spec.body ? Buffer.concat([head, spec.body]) : head;
}

export const json = (value: unknown) => Buffer.from(JSON.stringify(value));

export type AuthChoice = { header?: string; label: string; valid: boolean };

export function authChoice(rng: Rng, ctx: FuzzContext, validShare: number): AuthChoice {
  if (rng.next() < validShare)
    return { header: `Authorization: Bearer ${ctx.token}`, label: 'token', valid: true };
  const invalid: AuthChoice[] = [
    { label: 'no token', valid: false },
    { header: `Authorization: Bearer ${ctx.token}x`, label: 'wrong token', valid: false },
    { header: 'Authorization: Bearer', label: 'empty bearer', valid: false },
    {
      header: `Authorization: Basic ${Buffer.from(`u:${ctx.token}`).toString('base64')}`,
      label: 'basic',
      valid: false,
    },
    { header: `Authorization: ${ctx.token}`, label: 'bare token', valid: false },
    {
      header: `Authorization: Bearer ${ctx.token.toUpperCase()}`,
      label: 'token in upper case',
      valid: false,
    },
    { header: `Authorization: Bearer ${ctx.token.slice(0, -1)}`, label: 'token prefix', valid: false },
    { header: 'Authorization: Bearer \u0000', label: 'NUL token', valid: false },
    { header: `X-Api-Key: ${ctx.token}`, label: 'token in another header', valid: false },
  ];
  return pick(rng, invalid);
}

export function caseOf(
  family: Family,
  label: string,
  spec: RequestSpec,
  ctx: FuzzContext,
  extra: Partial<Pick<FuzzCase, 'halfClose' | 'incomplete' | 'answers'>> & { parts?: RawPart[] } = {},
): FuzzCase {
  const bytes = requestBytes(spec, ctx);
  const parts = extra.parts ?? [{ bytes }];
  const all = Buffer.concat(parts.map((p) => p.bytes));
  return {
    family,
    label,
    parts,
    preview: all.subarray(0, 400).toString('latin1'),
    mayPass: [carriesToken(all, ctx.token) || PUBLIC_PATHS.has(decodedPath(spec.target))],
    head: spec.method === 'HEAD',
    halfClose: extra.halfClose ?? false,
    incomplete: extra.incomplete ?? false,
    answers: extra.answers ?? 1,
  };
}
