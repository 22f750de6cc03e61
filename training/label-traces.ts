import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { type LatencySummary, summarize } from '../src/metrics/quantile.js';
import type { Price } from '../src/policy/price.js';
import { costUsd } from '../src/policy/route-view.js';
import type { GenerateResult, TierModel, TierRequest } from '../src/tiers/tier-model.js';
import { openTraceAppender, readTraces } from '../src/traces/jsonl-reader.js';
import { promptText, type Trace } from '../src/traces/trace-schema.js';
import { type GradeCommand, gradeWithCommand } from './grade-command.js';
import {
  applyCutOffPolicy,
  builtInMethodOf,
  type CutOffPolicy,
  type Grade,
  type GradeMethod,
  gradeChoice,
  gradeNumeric,
} from './grading.js';

/**
 * `auto`: a numeric reference is graded by its final number, a single letter A–J as an option letter,
 * anything else (and a trace without a reference) by the grading command when there is one.
 * `command`: every trace by the grading command.
 */
export type GradeMode = 'auto' | 'command';

export interface LabelOptions {
  tracesFile: string;
  outFile: string;
  /** The tier id the outcomes are recorded under. */
  tier: string;
  /** The tier to run: a tier of the pool (deployments, retries, breakers and failover included). */
  model: TierModel;
  /** The tier's list price, USD per million tokens: cost = price × the tokens the tier reported. */
  price: Price;
  maxTokens: number;
  limit?: number;
  /** Traces in flight at once. */
  concurrency?: number;
  mode?: GradeMode;
  command?: GradeCommand;
  /** What a numeric or letter answer cut off at maxTokens before its final line counts as. */
  cutOff?: CutOffPolicy;
  signal?: AbortSignal;
  onProgress?: (progress: LabelProgress) => void;
}

export interface LabelProgress {
  done: number;
  total: number;
  pass: number;
  elapsedMs: number;
}

type VerdictCounts = { pass: number; fail: number; ungradable: number };

export interface LabelSummary {
  tier: string;
  /** Answers graded and written: pass + fail + ungradable. */
  labelled: number;
  pass: number;
  fail: number;
  /** Answers written without an outcome: the grader could not read them (`ungradable_reasons` says why). */
  ungradable: number;
  by_method: Partial<Record<GradeMethod, VerdictCounts>>;
  ungradable_reasons: Record<string, number>;
  /** Tier calls that failed even after retries and failover: nothing written, so a rerun tries again. */
  errors: number;
  error_samples: string[];
  /** Failed attempts that a retry or another deployment then made good (or not). */
  failed_attempts: number;
  /** Times the tier said when to come back (rate limit, cooldown) and was waited for. */
  waits: number;
  /** Traces already in the output file (a resumed run). */
  skipped_done: number;
  /** Traces without a `reference_answer` and no grading command: copied unchanged. */
  without_reference: number;
  /** Traces whose free-text reference no built-in grader reads and no command was given: copied unchanged. */
  without_grader: number;
  bad_lines: number;
  tokens: { input: number; output: number };
  cost_usd: number;
  price: Price;
  /** Of the labelled answers; a call's latency includes its retries. */
  latency_ms: LatencySummary | null;
  seconds: number;
  interrupted: boolean;
  /** Why the run stopped before the end (the tier kept failing), when it did. */
  stopped?: string;
}

/** What a labelled trace records about its grade, under `grading[tier]`. */
export interface GradingRecord extends Grade {
  finish_reason: string;
  deployment: string;
  /** Failed attempts before the answer (retries and failover within the tier). */
  failed_attempts: number;
  /** The provider's warnings, e.g. token counts estimated because the upstream sent no usage. */
  warnings?: string[];
}

/** A tier failing this many traces in a row is down, not unlucky: the run stops and can be resumed. */
const STOP_AFTER_CONSECUTIVE_ERRORS = 5;
const ERROR_SAMPLES = 5;
/** A tier that says when to come back (retry-after, a breaker's cooldown) is waited for, this often. */
const MAX_WAITS_PER_TRACE = 3;
const MAX_WAIT_MS = 60_000;

/** Counts one written answer into the summary. */
function tally(summary: LabelSummary, method: GradeMethod, g: Grade, result: GenerateResult) {
  const counts = summary.by_method[method] ?? { pass: 0, fail: 0, ungradable: 0 };
  counts[g.verdict] += 1;
  summary.by_method[method] = counts;
  summary[g.verdict] += 1;
  summary.labelled += 1;
  if (g.verdict === 'ungradable') {
    // Grouped by what went wrong, not by the command's own words after the colon.
    const key = (g.reason ?? 'unknown').split(':')[0]!;
    summary.ungradable_reasons[key] = (summary.ungradable_reasons[key] ?? 0) + 1;
  }
  const { input_tokens: input, output_tokens: output } = result.usage;
  summary.tokens.input += input;
  summary.tokens.output += output;
  summary.cost_usd += costUsd(summary.price, input, output);
}

interface Answered {
  result: GenerateResult;
  /** Failed attempts before it (retries and failover within the tier). */
  failedAttempts: number;
  /** The answering call's wall time, its retries included, the waits before it not. */
  latencyMs: number;
}

/**
 * One answer from the tier. A tier that says when to come back (a rate limit's retry-after, every
 * deployment cooling down) is waited for, a few times, rather than given up on: a burst of 429s must
 * not cost the trace, nor (five traces later) the run. A failure carries `failedAttempts`.
 */
async function answer(
  model: TierModel,
  request: TierRequest,
  signal: AbortSignal,
  onWait: () => void,
): Promise<Answered> {
  let failedAttempts = 0;
  for (let waits = 0; ; waits++) {
    const t0 = performance.now();
    try {
      const result = await model.generate(request, {
        signal,
        onAttemptFailed: () => {
          failedAttempts += 1;
        },
      });
      return { result, failedAttempts, latencyMs: performance.now() - t0 };
    } catch (error) {
      const retryAfterMs = (error as { retryAfterMs?: number }).retryAfterMs;
      if (signal.aborted || retryAfterMs === undefined || waits >= MAX_WAITS_PER_TRACE) {
        throw Object.assign(error as Error, { failedAttempts });
      }
      onWait();
      await sleep(Math.min(retryAfterMs, MAX_WAIT_MS), undefined, { signal }).catch(() => {});
    }
  }
}

type Plan = { run: GradeMethod } | { copy: 'without_reference' | 'without_grader' };

/** How a trace is graded, decided before the tier is called: a trace nobody can grade costs no call. */
export function planOf(trace: Trace, mode: GradeMode, hasCommand: boolean): Plan {
  if (mode === 'command') return { run: 'command' };
  const reference = trace.reference_answer;
  const builtIn = reference === undefined ? null : builtInMethodOf(reference);
  if (builtIn) return { run: builtIn };
  if (hasCommand) return { run: 'command' };
  return { copy: reference === undefined ? 'without_reference' : 'without_grader' };
}

/**
 * The instruction the tier gets. GSM8K-style problems ask for the same `#### <number>` ending the
 * reference solutions use, so grading reads the answer the way they do; a code task's prompt already
 * says what to write.
 */
export function labelRequest(trace: Trace, maxTokens: number, method: GradeMethod): TierRequest {
  const prompt = promptText(trace);
  const instruction =
    method === 'numeric'
      ? `${prompt}\n\nSolve the problem step by step. End with a final line of the form "#### <number>".`
      : method === 'choice'
        ? `${prompt}\n\nReply with the letter of the correct option.`
        : prompt;
  // Greedy decoding: a label must not depend on a sampling seed.
  return { messages: [{ role: 'user', content: instruction }], max_tokens: maxTokens, temperature: 0 };
}

/** The trace with the tier's answer and grade added; an ungradable answer gets no outcome. */
export function labelledTrace(
  trace: Trace,
  tier: string,
  result: GenerateResult,
  grading: GradingRecord,
  latencyMs: number,
  price: Price,
): Trace {
  const { input_tokens: input, output_tokens: output } = result.usage;
  const previous = (trace as { grading?: Record<string, unknown> }).grading;
  return {
    ...trace,
    outcomes:
      grading.verdict === 'ungradable'
        ? trace.outcomes
        : { ...trace.outcomes, [tier]: grading.verdict === 'pass' },
    tokens: { ...trace.tokens, [tier]: { input, output } },
    cost: { ...trace.cost, [tier]: costUsd(price, input, output) },
    latency_ms: { ...trace.latency_ms, [tier]: Math.round(latencyMs) },
    responses: { ...trace.responses, [tier]: result.text },
    grading: { ...previous, [tier]: grading },
  };
}

async function grade(
  method: GradeMethod,
  trace: Trace,
  result: GenerateResult,
  options: LabelOptions,
): Promise<Grade> {
  const answer = { text: result.text, truncated: result.finish_reason === 'length' };
  const cutOff = options.cutOff ?? 'ungradable';
  if (method === 'numeric') return applyCutOffPolicy(gradeNumeric(answer, trace.reference_answer!), cutOff);
  if (method === 'choice') return applyCutOffPolicy(gradeChoice(answer, trace.reference_answer!), cutOff);
  return gradeWithCommand(
    options.command!,
    {
      tier: options.tier,
      trace,
      answer: result.text,
      reference_answer: trace.reference_answer ?? null,
      finish_reason: result.finish_reason,
    },
    options.signal,
  );
}

/**
 * Runs a tier on every trace it can grade, grades the answer and appends the trace with that tier's
 * outcome, tokens, cost, latency, answer and how it was graded. Resumable: a trace whose id is already
 * in the output file is not run again (whatever that line holds, so no id is ever written twice); each
 * result is appended as one whole line as soon as it is graded, so a killed run loses only the answers
 * in flight. Traces nothing can grade are copied unchanged, so the output keeps every input trace.
 */
export async function labelTraces(options: LabelOptions): Promise<LabelSummary> {
  const started = performance.now();
  const mode = options.mode ?? 'auto';
  if (mode === 'command' && !options.command) throw new TypeError('grade mode "command" needs a command');
  const { traces, errors } = await readTraces(options.tracesFile);
  const done = new Set<string>();
  if (existsSync(options.outFile)) {
    for (const trace of (await readTraces(options.outFile)).traces) done.add(trace.id);
  }
  const selected = options.limit === undefined ? traces : traces.slice(0, options.limit);
  const todo = selected.filter((t) => !done.has(t.id));
  const appender = await openTraceAppender(options.outFile);
  const summary: LabelSummary = {
    tier: options.tier,
    labelled: 0,
    pass: 0,
    fail: 0,
    ungradable: 0,
    by_method: {},
    ungradable_reasons: {},
    errors: 0,
    error_samples: [],
    failed_attempts: 0,
    waits: 0,
    skipped_done: selected.length - todo.length,
    without_reference: 0,
    without_grader: 0,
    bad_lines: errors.length,
    tokens: { input: 0, output: 0 },
    cost_usd: 0,
    price: options.price,
    latency_ms: null,
    seconds: 0,
    interrupted: false,
  };
  const latencies: number[] = [];
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  let consecutiveErrors = 0;
  let finished = 0;
  const progress = () =>
    options.onProgress?.({
      done: ++finished,
      total: todo.length,
      pass: summary.pass,
      elapsedMs: performance.now() - started,
    });

  const labelOne = async (trace: Trace) => {
    const plan = planOf(trace, mode, options.command !== undefined);
    if ('copy' in plan) {
      summary[plan.copy] += 1;
      await appender.append(trace);
      return;
    }
    let answered: Answered;
    try {
      answered = await answer(options.model, labelRequest(trace, options.maxTokens, plan.run), signal, () => {
        summary.waits += 1;
      });
    } catch (error) {
      summary.failed_attempts += (error as { failedAttempts?: number }).failedAttempts ?? 0;
      if (signal.aborted) return;
      summary.errors += 1;
      const message = `${trace.id}: ${(error as Error).message}`;
      if (summary.error_samples.length < ERROR_SAMPLES) summary.error_samples.push(message);
      if (++consecutiveErrors >= STOP_AFTER_CONSECUTIVE_ERRORS) {
        summary.stopped = `the tier failed ${consecutiveErrors} traces in a row (last: ${message})`;
        stop.abort();
      }
      return;
    }
    consecutiveErrors = 0;
    const { result, failedAttempts, latencyMs: latency } = answered;
    summary.failed_attempts += failedAttempts;
    const g = await grade(plan.run, trace, result, { ...options, signal });
    // A grading command killed by the interruption said nothing about the answer: leave it for the rerun.
    if (signal.aborted && plan.run === 'command') return;
    const grading: GradingRecord = {
      ...g,
      finish_reason: result.finish_reason,
      deployment: result.deployment,
      failed_attempts: failedAttempts,
      ...(result.warnings.length > 0 ? { warnings: result.warnings } : {}),
    };
    await appender.append(labelledTrace(trace, options.tier, result, grading, latency, options.price));
    tally(summary, plan.run, g, result);
    latencies.push(latency);
  };

  let next = 0;
  const worker = async () => {
    while (next < todo.length && !signal.aborted) {
      await labelOne(todo[next++]!);
      if (!signal.aborted) progress();
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency ?? 1 }, worker));
  } finally {
    await appender.close();
  }
  summary.interrupted = options.signal?.aborted ?? false;
  summary.latency_ms = latencies.length > 0 ? summarize(latencies) : null;
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}
