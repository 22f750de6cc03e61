import type { TempKind } from '../model-cache.js';

/** What a pull reports while it runs; the CLI draws a bar from it, library users may ignore it. */
export type DownloadEvent =
  /** A source is being tried (`index` counts from 1). */
  | { type: 'source'; index: number; count: number; label: string }
  /** A coarse phase inside a source (a chunk starts, a file is being extracted). */
  | { type: 'step'; message: string }
  /** Bytes received in the current source; `total` when the source knows it up front. */
  | { type: 'bytes'; done: number; total: number | undefined }
  | { type: 'source-failed'; label: string; reason: string }
  /** The assembled file is being hashed. */
  | { type: 'verify'; path: string };

export type DownloadProgress = (event: DownloadEvent) => void;

/** Everything a source needs; a source writes the whole model into `partialPath` and nothing else. */
export interface SourceContext {
  fetch: typeof fetch;
  /** Where the source writes the assembled file; created by the source, removed by the caller on failure. */
  partialPath: string;
  /** The bare file name the model will have once in place. */
  fileName: string;
  /** A fresh scratch path next to the final file (same filesystem); the source removes what it creates. */
  tempPath(kind: TempKind): string;
  onProgress: DownloadProgress;
  /** Aborts on user cancel; sources pass it to every request. */
  signal: AbortSignal | undefined;
  /** A request that sends no byte for this long is abandoned (covers hung connects too). */
  stallTimeoutMs: number;
  /** Hugging Face endpoint for `hf:` URIs. */
  hfEndpoint: string;
  /** Budget for reaching Hugging Face at all; keeps offline pulls fast. */
  hfConnectTimeoutMs: number;
}
