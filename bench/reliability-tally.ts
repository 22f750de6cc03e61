/**
 * What every part of the reliability harness counts with: status tallies, the error-shape check, a few
 * kept examples per kind of finding, and a bounded worker pool.
 */

export function tally(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

/**
 * `openai`: `{error: {message, type, code: "MR_ERR_…", param}}`, what OpenAI clients parse;
 * `fastify`: fastify's default `{statusCode, error, message}`; `other`: anything else (HTML, text).
 */
export type ErrorShape = 'openai' | 'fastify' | 'empty' | 'other';

export function errorShape(body: Buffer | string): ErrorShape {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  if (text.length === 0) return 'empty';
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'other';
  }
  const v = value as Record<string, unknown> | null;
  const error = v?.error as Record<string, unknown> | undefined;
  if (
    error &&
    typeof error === 'object' &&
    typeof error.message === 'string' &&
    typeof error.type === 'string' &&
    typeof error.code === 'string' &&
    error.code.startsWith('MR_ERR_') &&
    'param' in error
  ) {
    return 'openai';
  }
  return v && typeof v === 'object' && 'statusCode' in v && 'message' in v ? 'fastify' : 'other';
}

/** The `error.code` of an OpenAI-shaped body, if it is one. */
export function errorCode(body: Buffer | string): string | undefined {
  try {
    const value = JSON.parse(typeof body === 'string' ? body : body.toString('utf8')) as {
      error?: { code?: unknown };
    };
    return typeof value.error?.code === 'string' ? value.error.code : undefined;
  } catch {
    return undefined;
  }
}

/** The codes of the router refusing work it has no room or time for (not a fault of the request). */
const CAPACITY_CODES = new Set([
  'MR_ERR_ENCODER_OVERLOADED',
  'MR_ERR_ENCODER_QUEUE_FULL',
  'MR_ERR_RATE_LIMITED',
  'MR_ERR_SHUTTING_DOWN',
]);

/** A shed (429/503 with a retry-after and a capacity code) or the request deadline's 504. */
export function isCapacityAnswer(
  status: number,
  code: string | undefined,
  headers: Record<string, string | undefined>,
): boolean {
  if (code === 'MR_ERR_REQUEST_TIMEOUT') return status === 504;
  return (
    (status === 503 || status === 429) &&
    code !== undefined &&
    CAPACITY_CODES.has(code) &&
    headers['retry-after'] !== undefined
  );
}

export interface Example {
  label: string;
  request: string;
  status: number;
  outcome: string;
  ms: number;
  body: string;
}

export interface ExampleBook {
  add(
    kind: string,
    c: { label: string; preview: string },
    r: { status: number; outcome: string; ms: number; body: Buffer },
  ): void;
  all(): Record<string, Example[]>;
}

/** Keeps the first `perKind` examples of each kind of finding, bounded in size. */
export function exampleBook(perKind: number): ExampleBook {
  const book: Record<string, Example[]> = {};
  return {
    add(kind, c, r) {
      const list = book[kind] ?? [];
      book[kind] = list;
      if (list.length >= perKind) return;
      list.push({
        label: c.label,
        request: c.preview.slice(0, 300),
        status: r.status,
        outcome: r.outcome,
        ms: r.ms,
        body: r.body.subarray(0, 300).toString('utf8'),
      });
    },
    all: () => book,
  };
}

/** Runs `work` over `items` with at most `concurrency` at a time. */
export async function runPool<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      await work(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}
