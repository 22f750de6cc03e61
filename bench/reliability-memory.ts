import { existsSync, readFileSync, statSync } from 'node:fs';
import type { MemorySample } from './reliability-server.js';

/**
 * Where the server's memory goes over a load phase: the resident set from /proc (anonymous vs
 * file-backed, which is mostly the mapped model), and from the server's own memory probe the V8 heap,
 * external memory and array buffers. What the resident set holds beyond those is native: llama.cpp's
 * buffers, the allocator's arenas, thread stacks.
 */
export interface ProbeSample {
  t_s: number;
  rss: number;
  heap_total: number;
  heap_used: number;
  external: number;
  array_buffers: number;
}

interface Span {
  start: number;
  end: number;
  max: number;
}

export interface MemorySummary {
  /** MB. `growth_pct`: median of the last tenth of the samples over the median of the second tenth. */
  rss_mb: Span & { early_median: number; late_median: number; growth_pct: number };
  anon_mb: Span;
  file_mb: Span;
  heap_used_mb?: Span;
  heap_total_mb?: Span;
  external_mb?: Span;
  array_buffers_mb?: Span;
  /** At the end: anonymous memory outside the V8 heap and external buffers (native allocations). */
  native_anon_mb_end?: number;
}

const MB = 1024 * 1024;
const mb = (bytes: number) => Math.round(bytes / MB);

function span(values: readonly number[]): Span {
  return { start: mb(values[0] ?? 0), end: mb(values.at(-1) ?? 0), max: mb(Math.max(0, ...values)) };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** Reads the probe lines appended to `file` from now on. */
export function probeReader(file: string): { read(): ProbeSample[] } {
  const offset = existsSync(file) ? statSync(file).size : 0;
  return {
    read() {
      if (!existsSync(file)) return [];
      return readFileSync(file)
        .subarray(offset)
        .toString('utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as ProbeSample);
    },
  };
}

export function summarizeMemory(
  samples: readonly MemorySample[],
  probe: readonly ProbeSample[],
): MemorySummary {
  const rss = samples.map((s) => s.rss);
  const tenth = Math.max(1, Math.floor(rss.length / 10));
  const early = median(rss.slice(tenth, 2 * tenth));
  const late = median(rss.slice(-tenth));
  const last = probe.at(-1);
  const lastSample = samples.at(-1);
  return {
    rss_mb: {
      ...span(rss),
      early_median: mb(early),
      late_median: mb(late),
      growth_pct: early > 0 ? Math.round(((late - early) / early) * 1000) / 10 : 0,
    },
    anon_mb: span(samples.map((s) => s.anon)),
    file_mb: span(samples.map((s) => s.file)),
    ...(probe.length > 0
      ? {
          heap_used_mb: span(probe.map((p) => p.heap_used)),
          heap_total_mb: span(probe.map((p) => p.heap_total)),
          external_mb: span(probe.map((p) => p.external)),
          array_buffers_mb: span(probe.map((p) => p.array_buffers)),
        }
      : {}),
    ...(last && lastSample
      ? { native_anon_mb_end: mb(lastSample.anon - last.heap_total - last.external) }
      : {}),
  };
}
