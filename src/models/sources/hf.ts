import { type ChildProcess, fork } from 'node:child_process';
import { mkdir, rename, rm } from 'node:fs/promises';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { DownloadSourceError } from '../../errors.js';
import type { HfSourceSchema } from '../manifest.js';
import { type HfJob, HfWorkerMessageSchema } from './hf-protocol.js';
import { describeError } from './http-download.js';
import type { SourceContext } from './source-context.js';

/** Loading node-llama-cpp in the child takes a moment before it can even start connecting. */
const WORKER_STARTUP_MS = 15_000;
/** How failures of the worker are labelled (the source label already names the URI). */
const WORKER = 'node-llama-cpp downloader';

/** Mirrors node-llama-cpp: `HF_ENDPOINT` / `MODEL_ENDPOINT` redirect `hf:` URIs to a mirror. */
export function defaultHfEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return env.HF_ENDPOINT || env.MODEL_ENDPOINT || 'https://huggingface.co/';
}

/**
 * Any HTTP answer proves the endpoint is reachable. Without this, an offline machine would wait for the
 * worker's whole connect budget (ipull keeps retrying DNS failures); with it, offline costs milliseconds.
 */
async function preflight(ctx: SourceContext): Promise<void> {
  const signal = ctx.signal
    ? AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.hfConnectTimeoutMs)])
    : AbortSignal.timeout(ctx.hfConnectTimeoutMs);
  try {
    const response = await ctx.fetch(ctx.hfEndpoint, { method: 'HEAD', signal, redirect: 'manual' });
    await response.body?.cancel().catch(() => {});
  } catch (error) {
    if (ctx.signal?.aborted) throw ctx.signal.reason;
    throw new DownloadSourceError(`${ctx.hfEndpoint} unreachable`, describeError(error), { cause: error });
  }
}

function runWorker(job: HfJob, ctx: SourceContext): { child: ChildProcess; result: Promise<string> } {
  const workerPath = fileURLToPath(new URL('./hf-worker.js', import.meta.url));
  // execArgv: [] so a parent running under `node --test` or `--inspect` does not pass that on.
  const child = fork(workerPath, [], { execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr?.on('data', (data: Buffer) => {
    stderr = (stderr + data.toString()).slice(-2000);
  });

  const result = new Promise<string>((resolve, reject) => {
    const fail = (why: string) => {
      child.kill('SIGKILL');
      reject(new DownloadSourceError(WORKER, why));
    };
    // Until the worker has reached the file, the connect budget applies; after that, the stall timeout.
    let timer = setTimeout(
      () => fail(`no answer within ${Math.round((WORKER_STARTUP_MS + ctx.hfConnectTimeoutMs) / 1000)} s`),
      WORKER_STARTUP_MS + ctx.hfConnectTimeoutMs,
    );
    const onStall = () => fail(`no data for ${ctx.stallTimeoutMs / 1000} s`);
    const onAbort = () => {
      child.kill('SIGKILL');
      reject(ctx.signal?.reason);
    };
    ctx.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('message', (raw) => {
      const message = HfWorkerMessageSchema.safeParse(raw);
      if (!message.success) return fail('malformed message from the download worker');
      switch (message.data.type) {
        case 'ready':
        case 'progress':
          clearTimeout(timer);
          timer = setTimeout(onStall, ctx.stallTimeoutMs);
          if (message.data.type === 'progress') {
            ctx.onProgress({
              type: 'bytes',
              done: message.data.done,
              total: message.data.total || undefined,
            });
          }
          return;
        case 'done':
          return resolve(message.data.path);
        case 'error':
          return reject(new DownloadSourceError(WORKER, message.data.message));
      }
    });
    child.on('error', (error) => reject(new DownloadSourceError(WORKER, error.message, { cause: error })));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      ctx.signal?.removeEventListener('abort', onAbort);
      // A no-op when a message already settled the promise.
      reject(new DownloadSourceError(WORKER, `download worker exited (${signal ?? code}): ${stderr.trim()}`));
    });
  });
  child.send(job);
  return { child, result };
}

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once('exit', () => resolve()));

/**
 * A node-llama-cpp `hf:` URI, fetched by node-llama-cpp's own downloader (which knows HF tokens, mirrors
 * and rate limits) into a private scratch folder; only a complete file is moved to the partial path.
 */
export async function fetchFromHf(source: z.infer<typeof HfSourceSchema>, ctx: SourceContext): Promise<void> {
  await preflight(ctx);
  const dirPath = ctx.tempPath('hf');
  await mkdir(dirPath, { recursive: true });
  ctx.onProgress({ type: 'step', message: `node-llama-cpp: ${source.uri}` });
  const { child, result } = runWorker(
    { uri: source.uri, dirPath, fileName: ctx.fileName, endpoint: ctx.hfEndpoint },
    ctx,
  );
  try {
    const path = await result;
    if (relative(dirPath, path).startsWith('..')) {
      throw new DownloadSourceError(WORKER, `the downloader wrote outside its folder (${path})`);
    }
    await rename(path, ctx.partialPath);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    // Wait for the child to be gone, or it could recreate files in the folder being removed.
    await exited(child);
    await rm(dirPath, { recursive: true, force: true });
  }
}
