import { existsSync, readFileSync } from 'node:fs';
import { quantile } from '../src/metrics/quantile.js';
import { SHARED_MMLU } from '../test/support/mmlu-slice.js';
import { ask, isAnswer } from './reliability-client.js';
import { type MemorySummary, probeReader, summarizeMemory } from './reliability-memory.js';
import { type MemorySample, sampleMemory } from './reliability-server.js';
import { GPT4 } from './reliability-setup.js';
import { isCapacityAnswer, tally } from './reliability-tally.js';

/**
 * Load with overload: `clients` concurrent clients, each sending its next request as soon as the last
 * is answered, for `seconds`, on `/v1/route` or on chat (a mix of a named tier and `model: mechroute`,
 * plain and streamed), with the server's resident set sampled every second. Every request must get an
 * answer — a 2xx, or a fast 429/503 with a retry-after — within its deadline; what does not is counted.
 */
export type LoadKind = 'route' | 'chat';

export interface LoadOptions {
  url: string;
  token: string;
  pid: number;
  kind: LoadKind;
  clients: number;
  seconds: number;
  /** The server's request deadline (server.request_timeout_ms). */
  deadlineMs: number;
  /** The server's memory-probe file, if it runs one. */
  probeFile?: string;
  /** Share of route prompts that are long (about 2,000 tokens), the encoder's worst case. */
  longShare?: number;
  /**
   * Chat requests: `mixed` (a named tier and `model: mechroute`, plain and streamed, in turn) or `named`
   * (the named tier only: no encoder, the most requests per second, for memory).
   */
  chatMix?: 'mixed' | 'named';
}

export interface LatencyStats {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface LoadResult {
  kind: LoadKind;
  clients: number;
  seconds: number;
  sent: number;
  /** 2xx answers, complete (a stream ended with [DONE]). */
  ok: number;
  /** 429/503 with a retry-after and a capacity code, or the deadline's 504. */
  shed: number;
  by_status: Record<string, number>;
  /** Non-2xx answers that are not sheds: none expected (healthy upstreams). */
  errors: number;
  /** Sheds that took longer than FAST_SHED_MS. */
  slow_sheds: number;
  /** Answers that came after the deadline (+1 s). */
  past_deadline: number;
  /** No answer by the deadline + 5 s (the client gave up). */
  hangs: number;
  /** A connection error or a body that ended early (a stream without [DONE] or an error event). */
  cut: number;
  ok_per_s: number;
  latency_ms: { ok: LatencyStats; shed: LatencyStats };
  /** /healthz asked once a second during the phase: a slow or missing answer means a blocked event loop. */
  health: { checks: number; failures: number; max_ms: number };
  memory: MemorySummary;
  rss_samples: MemorySample[];
}

export const FAST_SHED_MS = 1_000;

function latency(samples: number[]): LatencyStats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => Math.round(quantile(sorted, p / 100) || 0);
  return { n: sorted.length, p50: at(50), p95: at(95), p99: at(99), max: Math.round(sorted.at(-1) ?? 0) };
}

/** Real questions from the shared MMLU traces, each made unique per request by a counter. */
export function loadPrompts(limit = 2_000): string[] {
  if (!existsSync(SHARED_MMLU)) {
    throw new Error(`the load part reads real prompts from ${SHARED_MMLU} (set MECHROUTE_SHARED_DATA)`);
  }
  const lines = readFileSync(SHARED_MMLU, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  const step = Math.max(1, Math.floor(lines.length / limit));
  const prompts: string[] = [];
  for (let i = 0; i < lines.length && prompts.length < limit; i += step) {
    prompts.push((JSON.parse(lines[i]!) as { prompt: string }).prompt);
  }
  return prompts;
}

/** A prompt of about 2,000 tokens: several questions in a row. */
const longPrompt = (prompts: readonly string[], n: number) =>
  Array.from({ length: 24 }, (_, i) => prompts[(n + i * 37) % prompts.length]).join('\n\n');

/** The n-th request of a load phase: its path and body. */
function request(
  options: LoadOptions,
  n: number,
  prompts: readonly string[],
): { path: string; body: unknown; headers?: Record<string, string> } {
  const question = `(${n}) ${prompts[n % prompts.length]}`;
  if (options.kind === 'route') {
    const share = options.longShare ?? 0.02;
    const every = share > 0 ? Math.round(1 / share) : 0;
    const long = every > 0 && n % every === every - 1;
    return { path: '/v1/route', body: { prompt: long ? `(${n}) ${longPrompt(prompts, n)}` : question } };
  }
  // Named tier and routed, plain and streamed, in turn. Both land on the dearer tier (threshold 1 for
  // the routed ones), whose attempts may take seconds: the cheaper tier's 1 s attempts are for the
  // fault runs, and a starved upstream would time them out here.
  const routed = options.chatMix !== 'named' && n % 4 >= 2;
  return {
    path: '/v1/chat/completions',
    ...(routed ? { headers: { 'x-mechroute-threshold': '1' } } : {}),
    body: {
      model: routed ? 'mechroute' : GPT4.id,
      messages: [{ role: 'user', content: question }],
      max_tokens: 6,
      stream: n % 2 === 1,
    },
  };
}

export async function runLoad(options: LoadOptions, log: (line: string) => void): Promise<LoadResult> {
  const prompts = loadPrompts();
  const result: Omit<LoadResult, 'latency_ms' | 'memory' | 'rss_samples' | 'ok_per_s' | 'health'> = {
    kind: options.kind,
    clients: options.clients,
    seconds: options.seconds,
    sent: 0,
    ok: 0,
    shed: 0,
    by_status: {},
    errors: 0,
    slow_sheds: 0,
    past_deadline: 0,
    hangs: 0,
    cut: 0,
  };
  const okMs: number[] = [];
  const shedMs: number[] = [];
  const memory = sampleMemory(options.pid);
  const health = { checks: 0, failures: 0, max_ms: 0 };
  const healthTimer = setInterval(async () => {
    const o = await ask(`${options.url}/healthz`, { waitMs: 5_000 });
    health.checks += 1;
    if (!isAnswer(o) || o.status !== 200) health.failures += 1;
    health.max_ms = Math.max(health.max_ms, Math.round(o.ms));
  }, 1_000);
  const probe = options.probeFile ? probeReader(options.probeFile) : undefined;
  const started = performance.now();
  const stopAt = started + options.seconds * 1000;
  let counter = 0;
  let lastLog = started;
  const client = async () => {
    while (performance.now() < stopAt) {
      const n = counter++;
      result.sent += 1;
      const { path, body, headers } = request(options, n, prompts);
      const outcome = await ask(`${options.url}${path}`, {
        token: options.token,
        body,
        ...(headers ? { headers } : {}),
        waitMs: options.deadlineMs + 5_000,
      });
      if (!isAnswer(outcome)) {
        result[outcome.kind === 'hang' ? 'hangs' : 'cut'] += 1;
        tally(result.by_status, outcome.kind);
        continue;
      }
      const ok = outcome.status >= 200 && outcome.status < 300 && !outcome.streamError;
      tally(result.by_status, ok ? String(outcome.status) : `${outcome.status} ${outcome.code ?? ''}`.trim());
      if (!outcome.complete) result.cut += 1;
      if (outcome.ms > options.deadlineMs + 1_000) result.past_deadline += 1;
      if (ok) {
        if (outcome.complete) result.ok += 1;
        okMs.push(outcome.ms);
      } else if (isCapacityAnswer(outcome.status, outcome.code, { 'retry-after': outcome.retryAfter })) {
        result.shed += 1;
        shedMs.push(outcome.ms);
        if (outcome.status !== 504 && outcome.ms > FAST_SHED_MS) result.slow_sheds += 1;
      } else {
        result.errors += 1;
      }
      if (performance.now() - lastLog > 30_000) {
        lastLog = performance.now();
        log(`load ${options.kind}: ${result.sent} sent, ${result.ok} ok, ${result.shed} shed`);
      }
    }
  };
  await Promise.all(Array.from({ length: options.clients }, client));
  clearInterval(healthTimer);
  const seconds = (performance.now() - started) / 1000;
  const samples = memory.stop();
  return {
    ...result,
    ok_per_s: Math.round((result.ok / seconds) * 10) / 10,
    latency_ms: { ok: latency(okMs), shed: latency(shedMs) },
    health,
    memory: summarizeMemory(samples, probe?.read() ?? []),
    rss_samples: samples,
  };
}
