import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { DownloadSourceError } from '../../errors.js';
import type { SourceContext } from './source-context.js';

/** `fetch failed` alone says nothing; undici puts the real reason (ECONNREFUSED, ENOTFOUND…) in `cause`. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? error.cause : undefined;
  const code = (error as { code?: unknown }).code;
  const suffix = typeof code === 'string' && code.startsWith('MR_ERR_') ? ` [${code}]` : '';
  return cause && !error.message.includes(cause.message)
    ? `${error.message} (${cause.message})${suffix}`
    : `${error.message}${suffix}`;
}

/**
 * An abort signal that fires when `touch()` has not been called for `ms`, or when `outer` aborts.
 * Catches both a connect that never completes and a body that stops flowing, without capping the
 * total time of a slow but steady download.
 */
export function createStallGuard(ms: number, what: string, outer: AbortSignal | undefined) {
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(new DownloadSourceError(what, `no data for ${ms / 1000} s`));
  }, ms);
  const signal = outer ? AbortSignal.any([controller.signal, outer]) : controller.signal;
  return {
    signal,
    touch: () => timer.refresh(),
    dispose: () => clearTimeout(timer),
  };
}

export interface HttpGetOptions {
  headers?: Record<string, string>;
  /** Called with the running byte count of this response. */
  onBytes?: (done: number, total: number | undefined) => void;
}

/** GET `url`; a non-2xx answer is an error (network errors are phrased by `guarded`). */
async function get(ctx: SourceContext, url: string, signal: AbortSignal, headers?: Record<string, string>) {
  const response = await ctx.fetch(url, { signal, redirect: 'follow', ...(headers ? { headers } : {}) });
  if (!response.ok) {
    await response.body?.cancel().catch(() => {});
    throw new DownloadSourceError(`GET ${url}`, `HTTP ${response.status} ${response.statusText}`.trim());
  }
  return response;
}

/**
 * Runs one request under a stall guard and turns whatever it throws into one readable error: the
 * user's abort reason as is (so the caller stops trying sources), the stall error as is, anything
 * else (`fetch failed`, a reset mid-body) as a DownloadSourceError naming the URL.
 */
async function guarded<T>(
  ctx: SourceContext,
  url: string,
  work: (guard: ReturnType<typeof createStallGuard>) => Promise<T>,
): Promise<T> {
  const guard = createStallGuard(ctx.stallTimeoutMs, `GET ${url}`, ctx.signal);
  try {
    return await work(guard);
  } catch (error) {
    if (ctx.signal?.aborted) throw ctx.signal.reason;
    if (guard.signal.aborted) throw guard.signal.reason;
    if (error instanceof DownloadSourceError) throw error;
    throw new DownloadSourceError(`GET ${url}`, describeError(error), { cause: error });
  } finally {
    guard.dispose();
  }
}

/** GET a small JSON document. */
export function getJson(ctx: SourceContext, url: string, headers: Record<string, string>): Promise<unknown> {
  return guarded(ctx, url, async (guard) => {
    const response = await get(ctx, url, guard.signal, headers);
    const text = await response.text();
    try {
      return JSON.parse(text) as unknown;
    } catch {
      const type = response.headers.get('content-type') ?? 'no content type';
      throw new DownloadSourceError(`GET ${url}`, `expected JSON, got ${type}`);
    }
  });
}

/**
 * Streams the body of `url` into `out` at its current position, hashing on the way so no second pass
 * over the bytes is needed. Returns the byte count and the sha256 of what was written.
 */
export function downloadInto(
  ctx: SourceContext,
  url: string,
  out: FileHandle,
  options: HttpGetOptions = {},
): Promise<{ bytes: number; sha256: string }> {
  return guarded(ctx, url, async (guard) => {
    const response = await get(ctx, url, guard.signal, options.headers);
    const length = Number(response.headers.get('content-length'));
    const total = Number.isFinite(length) && length > 0 ? length : undefined;
    const hash = createHash('sha256');
    let bytes = 0;
    if (response.body) {
      for await (const chunk of response.body) {
        guard.touch();
        hash.update(chunk);
        await out.write(chunk);
        bytes += chunk.byteLength;
        options.onBytes?.(bytes, total);
      }
    }
    if (total !== undefined && bytes !== total) {
      throw new DownloadSourceError(`GET ${url}`, `connection closed after ${bytes} of ${total} bytes`);
    }
    return { bytes, sha256: hash.digest('hex') };
  });
}
