import { statfsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LatencySummary, summarize } from '../src/metrics/quantile.js';
import { Telemetry } from '../src/server/telemetry.js';
import { openStateStore } from '../src/state/sqlite-state-store.js';
import type { StateStore } from '../src/state/state-store.js';

/**
 * What persisting costs a request: the time `Telemetry.recordCompletion` and `recordFeedback` take with
 * the SQLite state file (one transaction each, on the event loop), for both `state.synchronous` modes,
 * measured in interleaved blocks in one process; and the file's size per answered request.
 */
export interface StateBenchResult {
  requests: number;
  /** Microseconds per call. */
  completion_us: Record<'normal' | 'full', LatencySummary>;
  feedback_us: Record<'normal' | 'full', LatencySummary>;
  /** Answered requests per second one core could record, from the mean (normal mode). */
  max_completions_per_s_normal: number;
  bytes_per_request: number;
  filesystem_dir: string;
  /** fsync is free on tmpfs: `full` numbers from there say nothing. */
  tmpfs: boolean;
}

const TMPFS_MAGIC = 0x01021994;

const MODES = ['normal', 'full'] as const;
const BLOCK = 250;

export async function runStateBench(
  options: { requests: number; dir?: string },
  log: (line: string) => void,
): Promise<StateBenchResult> {
  const dir = await mkdtemp(join(options.dir ?? tmpdir(), 'mechroute-state-bench-'));
  try {
    const stores = {} as Record<(typeof MODES)[number], StateStore>;
    const telemetry = {} as Record<(typeof MODES)[number], Telemetry>;
    for (const mode of MODES) {
      stores[mode] = openStateStore(join(dir, `${mode}.sqlite`), { synchronous: mode });
      telemetry[mode] = new Telemetry({
        store: stores[mode],
        retention: { feedback_days: 30, max_requests: 10_000_000 },
      });
    }
    const completion = { normal: [] as number[], full: [] as number[] };
    const feedback = { normal: [] as number[], full: [] as number[] };
    const time = (fn: () => void) => {
      const start = process.hrtime.bigint();
      fn();
      return Number(process.hrtime.bigint() - start) / 1000;
    };
    for (let done = 0; done < options.requests; done += BLOCK) {
      for (const mode of MODES) {
        for (let i = done; i < Math.min(done + BLOCK, options.requests); i++) {
          completion[mode].push(
            time(() =>
              telemetry[mode].recordCompletion({
                requestId: `req-${mode}-${i}`,
                tier: i % 3 === 0 ? 'gpt-4-1106-preview' : 'mixtral-8x7b-instruct',
                costUsd: 0.0001 * (i % 7),
                latencyMs: 120 + (i % 50),
                escalations: i % 11 === 0 ? 1 : 0,
                fallback: i % 13 === 0,
                policyVersion: 'cal-20261128T120000Z-aaaaaaaa',
                taskClass: i % 2 === 0 ? 'STEM' : 'humanities',
              }),
            ),
          );
        }
      }
      log(`recorded ${Math.min(done + BLOCK, options.requests)} / ${options.requests}`);
    }
    for (let done = 0; done < options.requests; done += BLOCK) {
      for (const mode of MODES) {
        for (let i = done; i < Math.min(done + BLOCK, options.requests); i++) {
          feedback[mode].push(time(() => telemetry[mode].recordFeedback(`req-${mode}-${i}`, i % 4 !== 0)));
        }
      }
    }
    for (const mode of MODES) stores[mode].close(); // checkpoints the WAL into the file
    const bytes = statSync(join(dir, 'normal.sqlite')).size;
    const result: StateBenchResult = {
      requests: options.requests,
      completion_us: { normal: summarize(completion.normal), full: summarize(completion.full) },
      feedback_us: { normal: summarize(feedback.normal), full: summarize(feedback.full) },
      max_completions_per_s_normal: 0,
      bytes_per_request: Math.round(bytes / options.requests),
      filesystem_dir: options.dir ?? tmpdir(),
      tmpfs: statfsSync(dir).type === TMPFS_MAGIC,
    };
    result.max_completions_per_s_normal = Math.round(1e6 / result.completion_us.normal.mean);
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function stateMarkdown(r: StateBenchResult): string {
  const row = (what: string, s: LatencySummary) => `| ${what} | ${s.p50} | ${s.p95} | ${s.mean} |`;
  return [
    `State file (SQLite, WAL): ${r.requests} answered requests then ${r.requests} outcomes per mode, recorded through \`Telemetry\` in interleaved blocks of ${BLOCK}, one transaction each, in ${r.filesystem_dir} (${r.tmpfs ? 'tmpfs: fsync costs nothing there' : 'on disk, not tmpfs'}).`,
    '',
    '| call | p50 µs | p95 µs | mean µs |',
    '|---|---|---|---|',
    row('recordCompletion, `synchronous: normal` (default)', r.completion_us.normal),
    row('recordCompletion, `synchronous: full`', r.completion_us.full),
    row('recordFeedback, `synchronous: normal`', r.feedback_us.normal),
    row('recordFeedback, `synchronous: full`', r.feedback_us.full),
    '',
    `- full / normal, recordCompletion mean: **${(r.completion_us.full.mean / r.completion_us.normal.mean).toFixed(1)}×**; normal mode could record ~${r.max_completions_per_s_normal} answered requests/s on one core`,
    `- file size: ${r.bytes_per_request} bytes per answered request (rated, with its counters), so the default \`max_requests\` of 1,000,000 is ~${Math.round((r.bytes_per_request * 1e6) / 1e6)} MB`,
  ].join('\n');
}
