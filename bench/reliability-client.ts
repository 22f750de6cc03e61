/**
 * One request to the router as an OpenAI client makes it (fetch, JSON in, JSON or SSE out), read to its
 * end and judged: did a complete answer arrive, an explicit error, or nothing in time?
 */
export interface Answer {
  status: number;
  /** `error.code` of an error body or of a stream's error event. */
  code?: string;
  retryAfter?: string;
  headers: Headers;
  text: string;
  ms: number;
  /**
   * A 2xx body that is whole (a stream ended with `data: [DONE]`), or an explicit error: an error
   * status with a body, or a stream that ended with an error event. False: the answer was cut.
   */
  complete: boolean;
  /** A 2xx stream that ended with an error event instead of [DONE]. */
  streamError: boolean;
}

export type Outcome = Answer | { status: 0; kind: 'hang' | 'cut'; ms: number; message: string };

export const isAnswer = (o: Outcome): o is Answer => o.status !== 0;

/** `error.code` of a JSON error body or of the last error event of an SSE stream. */
export function codeOf(text: string): string | undefined {
  const matches = [...text.matchAll(/"code"\s*:\s*"(MR_ERR_[A-Z_]+)"/g)];
  return matches.at(-1)?.[1];
}

export async function ask(
  url: string,
  options: {
    method?: string;
    token?: string;
    body?: unknown;
    headers?: Record<string, string>;
    /** Give up (a hang) after this long. */
    waitMs: number;
  },
): Promise<Outcome> {
  const started = performance.now();
  const stream = (options.body as { stream?: unknown } | undefined)?.stream === true;
  try {
    const response = await fetch(url, {
      method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
      headers: {
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...options.headers,
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      signal: AbortSignal.timeout(options.waitMs),
    });
    const text = await response.text();
    const ms = performance.now() - started;
    const streamError = response.ok && stream && !text.includes('data: [DONE]') && /"error"\s*:/.test(text);
    const complete = response.ok ? !stream || text.includes('data: [DONE]') || streamError : text.length > 0;
    const code = response.ok && !streamError ? undefined : codeOf(text);
    const retryAfter = response.headers.get('retry-after') ?? undefined;
    return {
      status: response.status,
      ...(code ? { code } : {}),
      ...(retryAfter ? { retryAfter } : {}),
      headers: response.headers,
      text,
      ms,
      complete,
      streamError,
    };
  } catch (error) {
    const e = error as Error & { cause?: { code?: string } };
    return {
      status: 0,
      kind: e.name === 'TimeoutError' ? 'hang' : 'cut',
      ms: performance.now() - started,
      message: `${e.name}: ${e.message}${e.cause?.code ? ` (${e.cause.code})` : ''}`,
    };
  }
}

/**
 * Waits until a short routing request is answered: the encoder may still be working off an earlier
 * phase's long prompts (or shedding because of them), and a part about something else must not measure
 * that. Returns the milliseconds waited; throws if it never settles.
 */
export async function waitForEncoder(url: string, token: string, maxMs = 180_000): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < maxMs) {
    const outcome = await ask(`${url}/v1/route`, {
      token,
      body: { prompt: 'Is the router ready?' },
      waitMs: 30_000,
    });
    if (isAnswer(outcome) && outcome.status === 200) return Math.round(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`the encoder did not answer a short routing request within ${maxMs} ms`);
}
