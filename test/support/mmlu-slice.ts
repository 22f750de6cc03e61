import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';

/**
 * The shared traces: where MECHROUTE_SHARED_DATA points, else beside the checkout (../shared/data) or
 * beside the folder of worktrees it is one of (../../shared/data).
 */
export const SHARED_DATA =
  process.env.MECHROUTE_SHARED_DATA ??
  [join(packageRoot, '..', 'shared', 'data'), join(packageRoot, '..', '..', 'shared', 'data')].find((d) =>
    existsSync(d),
  ) ??
  join(packageRoot, '..', 'shared', 'data');
export const SHARED_MMLU = join(SHARED_DATA, 'mmlu-traces.jsonl');
export const SHARED_GSM8K = join(SHARED_DATA, 'gsm8k-traces.jsonl');

/**
 * The raw lines of the shared MMLU traces grouped by subject — subjects in alphabetical order, each
 * shortest question first — so tests can cut small real slices that keep whole subjects.
 */
export async function mmluLinesBySubject(): Promise<string[][]> {
  const bySubject = new Map<string, { line: string; length: number }[]>();
  for (const line of (await readFile(SHARED_MMLU, 'utf8')).split('\n')) {
    if (line.trim() === '') continue;
    const trace = JSON.parse(line) as { subject: string; prompt: string };
    const list = bySubject.get(trace.subject) ?? [];
    list.push({ line, length: trace.prompt.length });
    bySubject.set(trace.subject, list);
  }
  return [...bySubject.keys()]
    .sort()
    .map((s) => [...bySubject.get(s)!].sort((a, b) => a.length - b.length).map((e) => e.line));
}

/**
 * A directory for activation stores that test files of one `npm test` run share (scripts/run-tests.mjs
 * sets MECHROUTE_TEST_CACHE to a fresh folder and removes it afterwards), so prompts that several files
 * extract are encoded once per run; a file run on its own gets `fallback`, its private folder.
 */
export function sharedStoreDir(name: string, fallback: string): string {
  const cache = process.env.MECHROUTE_TEST_CACHE;
  return cache ? join(cache, name) : fallback;
}

/** The store of the MMLU slices that bench-routing and train-eval extract (the shortest questions per subject). */
export const MMLU_SLICE_STORE = 'mmlu-shortest-store';
