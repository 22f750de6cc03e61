import { existsSync } from 'node:fs';
import type { TierModel, TierRequest } from '../src/tiers/tier-model.js';
import { openTraceAppender, readTraces } from '../src/traces/jsonl-reader.js';
import { promptText, type Trace } from '../src/traces/trace-schema.js';
import { gradeKindOf, gradeResponse } from './grading.js';

export interface LabelOptions {
  tracesFile: string;
  outFile: string;
  /** The tier id the outcomes are recorded under. */
  tier: string;
  model: TierModel;
  maxTokens: number;
  limit?: number;
  /** Requests in flight at once (the local tier serves several sequences). */
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (progress: LabelProgress) => void;
}

export interface LabelProgress {
  done: number;
  total: number;
  correct: number;
  elapsedMs: number;
}

export interface LabelSummary {
  tier: string;
  labelled: number;
  correct: number;
  /** Already labelled for this tier in the output file (a resumed run). */
  skipped_done: number;
  /** Traces without a `reference_answer`: copied to the output unchanged, nothing to grade against. */
  without_reference: number;
  bad_lines: number;
  tokens: { input: number; output: number };
  seconds: number;
  interrupted: boolean;
}

/**
 * The instruction the worker gets for each kind of reference. GSM8K-style problems ask for the same
 * `#### <number>` ending the reference solutions use, so grading reads the answer the way they do.
 */
export function labelRequest(trace: Trace, maxTokens: number): TierRequest {
  const prompt = promptText(trace);
  const kind = gradeKindOf(trace.reference_answer ?? '');
  const instruction =
    kind === 'numeric'
      ? `${prompt}\n\nSolve the problem step by step. End with a final line of the form "#### <number>".`
      : kind === 'choice'
        ? `${prompt}\n\nReply with the letter of the correct option.`
        : prompt;
  // Greedy decoding: a label must not depend on a sampling seed.
  return { messages: [{ role: 'user', content: instruction }], max_tokens: maxTokens, temperature: 0 };
}

/**
 * Runs a tier on every trace that carries a reference answer, grades its answer and writes the trace
 * with that tier's outcome, tokens, latency and response appended. Resumable: the output file is read
 * first and traces already labelled for the tier are not run again; each result is appended as one
 * whole line as soon as it is graded.
 */
export async function labelTraces(options: LabelOptions): Promise<LabelSummary> {
  const started = performance.now();
  const { traces, errors } = await readTraces(options.tracesFile);
  const done = new Set<string>();
  if (existsSync(options.outFile)) {
    for (const trace of (await readTraces(options.outFile)).traces) {
      if (trace.outcomes[options.tier] !== undefined || trace.reference_answer === undefined)
        done.add(trace.id);
    }
  }
  const selected = options.limit === undefined ? traces : traces.slice(0, options.limit);
  const todo = selected.filter((t) => !done.has(t.id));
  const appender = await openTraceAppender(options.outFile);
  const summary: LabelSummary = {
    tier: options.tier,
    labelled: 0,
    correct: 0,
    skipped_done: selected.length - todo.length,
    without_reference: 0,
    bad_lines: errors.length,
    tokens: { input: 0, output: 0 },
    seconds: 0,
    interrupted: false,
  };
  let next = 0;
  const worker = async () => {
    while (next < todo.length && !options.signal?.aborted) {
      const trace = todo[next++]!;
      if (trace.reference_answer === undefined) {
        summary.without_reference += 1;
        await appender.append(trace);
        continue;
      }
      const t0 = performance.now();
      const result = await options.model.generate(labelRequest(trace, options.maxTokens), {
        ...(options.signal ? { signal: options.signal } : {}),
      });
      const latency = performance.now() - t0;
      const grade = gradeResponse(result.text, trace.reference_answer);
      await appender.append({
        ...trace,
        outcomes: { ...trace.outcomes, [options.tier]: grade.correct },
        tokens: {
          ...trace.tokens,
          [options.tier]: { input: result.usage.input_tokens, output: result.usage.output_tokens },
        },
        latency_ms: { ...trace.latency_ms, [options.tier]: Math.round(latency) },
        responses: { ...trace.responses, [options.tier]: result.text },
      });
      summary.labelled += 1;
      summary.correct += grade.correct ? 1 : 0;
      summary.tokens.input += result.usage.input_tokens;
      summary.tokens.output += result.usage.output_tokens;
      options.onProgress?.({
        done: summary.labelled + summary.without_reference,
        total: todo.length,
        correct: summary.correct,
        elapsedMs: performance.now() - started,
      });
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency ?? 1 }, worker));
  } catch (error) {
    if (!options.signal?.aborted) throw error;
  } finally {
    await appender.close();
  }
  summary.interrupted = options.signal?.aborted ?? false;
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}
