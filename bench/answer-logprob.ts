import { existsSync } from 'node:fs';
import type { LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import { z } from 'zod';
import { loadActivationBinding } from '../src/encoder/native-binding.js';
import { TrainingDataError } from '../src/errors.js';
import { stepProbeText } from '../src/probes/step-probe-info.js';
import { createRng } from '../src/seeded-rng.js';
import { sharedPrefixLength } from '../src/token-prefix.js';
import { JsonlAppender, readJsonl } from '../src/traces/jsonl-reader.js';
import { promptText, type Trace } from '../src/traces/trace-schema.js';

/**
 * The logprob gate's reading where the traces have none: the mean token logprob of a recorded answer
 * as a *local* model scores it (teacher forcing), conditioned on the prompt. The traces hold Mixtral's
 * answer text but not Mixtral's token logprobs, so this is a proxy — how likely the local model finds
 * the answer — and never the answering tier's own confidence.
 *
 * The text scored is the one the step probe reads, `stepProbeText(prompt, answer)` (prompt, a blank
 * line, the trimmed answer), after the model's BOS token; the tokens scored are those after the longest
 * token prefix it shares with `prompt + "\n\n"`, each from the position before it.
 */
export const AnswerLogprobSchema = z.strictObject({
  id: z.string().min(1),
  tier: z.string().min(1),
  /** The scoring model (a manifest name), so a cache from another model is never mixed in. */
  model: z.string().min(1),
  /** Mean over the answer's tokens of ln P(token | everything before it). */
  mean_logprob: z.number().max(0),
  tokens: z.number().int().positive(),
});
export type AnswerLogprob = z.infer<typeof AnswerLogprobSchema>;

/**
 * Full-vocabulary probabilities cost ~140 ms a token on a CPU core (node-llama-cpp hands all 262k to
 * JS); a min-p filter at 1e-8 of the top token hands over ~2 % of them and renormalises over those. The
 * mass it drops moves a mean logprob by < 1e-4 nats on the GSM8K answers measured side by side (see
 * BENCHMARKS.md); a token below the filter is never guessed: its answer is scored again unfiltered.
 */
const FILTERED = {
  probabilities: true,
  options: { temperature: 1, topK: 0, topP: 1, minP: 1e-8, seed: 1 },
} as const;
const EXACT = { probabilities: true } as const;

export interface AnswerScore {
  mean_logprob: number;
  tokens: number;
  /** Whether the unfiltered pass was needed (a token fell below the min-p filter). */
  exact_rerun: boolean;
}

export interface AnswerScorer {
  score(prompt: string, answer: string, options?: { exact?: boolean }): Promise<AnswerScore>;
  dispose(): Promise<void>;
}

export async function createAnswerScorer(
  modelPath: string,
  options: { contextSize?: number; threads?: number } = {},
): Promise<AnswerScorer> {
  const { llama } = await loadActivationBinding('auto');
  const model: LlamaModel = await llama.loadModel({ modelPath });
  const contextSize = options.contextSize ?? 2048;
  // One thread by default: each token's probabilities are read one after another, and llama.cpp's extra
  // threads spin between them — 10× the CPU for the same scores on a shared 2-core machine (measured).
  const context = await model.createContext({ contextSize, threads: options.threads ?? 1 });
  const sequence: LlamaContextSequence = context.getSequence();
  const bos: Token[] =
    model.tokens.bos !== null && model.tokens.shouldPrependBosToken ? [model.tokens.bos] : [];

  /** ln P of each scored token, or undefined at a token the filter dropped. */
  async function logprobs(tokens: Token[], start: number, exact: boolean): Promise<(number | undefined)[]> {
    const next = exact ? EXACT : FILTERED;
    const input = tokens.map((t, i) =>
      i >= start - 1 && i < tokens.length - 1 ? ([t, { generateNext: next }] as [Token, object]) : t,
    );
    try {
      const out = await sequence.controlledEvaluate(
        input as Parameters<typeof sequence.controlledEvaluate>[0],
      );
      const values: (number | undefined)[] = [];
      for (let i = start - 1; i < tokens.length - 1; i += 1) {
        const p = out[i]?.next.probabilities?.get(tokens[i + 1]!);
        values.push(p === undefined || p <= 0 ? undefined : Math.log(p));
      }
      return values;
    } finally {
      await sequence.clearHistory();
    }
  }

  return {
    async score(prompt, answer, scoreOptions = {}) {
      const tokens = [...bos, ...model.tokenize(stepProbeText(prompt, answer))];
      const context = [...bos, ...model.tokenize(`${prompt}\n\n`)];
      const start = Math.max(1, sharedPrefixLength(context, tokens));
      if (start >= tokens.length) throw new TrainingDataError('the answer has no tokens to score');
      if (tokens.length > contextSize) {
        throw new TrainingDataError(
          `prompt + answer is ${tokens.length} tokens, over the ${contextSize} scored`,
        );
      }
      let exact = scoreOptions.exact === true;
      let values = await logprobs(tokens, start, exact);
      if (!exact && values.some((v) => v === undefined)) {
        exact = true;
        values = await logprobs(tokens, start, true);
      }
      const finite = values.map((v) => v ?? Math.log(Number.MIN_VALUE));
      return {
        mean_logprob: finite.reduce((s, v) => s + v, 0) / finite.length,
        tokens: finite.length,
        exact_rerun: exact && scoreOptions.exact !== true,
      };
    },
    async dispose() {
      await context.dispose();
      await model.dispose();
    },
  };
}

export interface FillAnswerLogprobsOptions {
  traces: readonly Trace[];
  tier: string;
  /** JSONL of `AnswerLogprob` records: read first, then appended to (a killed run resumes). */
  cacheFile: string;
  modelPath: string;
  modelName: string;
  /** The first this many problems of the seeded order (default: every problem with an answer). */
  problems?: number;
  threads?: number;
  log: (line: string) => void;
}

/**
 * The tier's answers scored, for the first `problems` of its problems in a seeded random order — so any
 * prefix of that order is a random subset, not the first problems of the file — scoring the ones not in
 * the cache yet.
 */
export async function fillAnswerLogprobs(options: FillAnswerLogprobsOptions): Promise<AnswerLogprob[]> {
  const { tier, modelName, log } = options;
  const cached = existsSync(options.cacheFile)
    ? (
        await readJsonl(options.cacheFile, AnswerLogprobSchema, {
          throwOnError: true,
          what: 'answer logprob cache',
          key: (r) => `${r.id}\u0000${r.tier}\u0000${r.model}`,
        })
      ).records.filter((r) => r.tier === tier && r.model === modelName)
    : [];
  const done = new Map(cached.map((r) => [r.id, r]));
  const chosen = createRng(SCORE_ORDER_SEED)
    .shuffle(options.traces.filter((t) => t.responses?.[tier] !== undefined))
    .slice(0, options.problems ?? Number.POSITIVE_INFINITY);
  const todo = chosen.filter((t) => !done.has(t.id));
  if (todo.length > 0) {
    log(
      `answer logprobs: ${chosen.length - todo.length} cached, scoring ${todo.length} ${tier} answers with ${modelName}`,
    );
    const scorer = await createAnswerScorer(options.modelPath, {
      ...(options.threads === undefined ? {} : { threads: options.threads }),
    });
    const appender = await JsonlAppender.open(options.cacheFile, AnswerLogprobSchema);
    const started = performance.now();
    let reruns = 0;
    try {
      for (const [i, trace] of todo.entries()) {
        const score = await scorer.score(promptText(trace), trace.responses![tier]!);
        if (score.exact_rerun) reruns += 1;
        const record: AnswerLogprob = {
          id: trace.id,
          tier,
          model: modelName,
          mean_logprob: score.mean_logprob,
          tokens: score.tokens,
        };
        await appender.append(record);
        done.set(trace.id, record);
        if ((i + 1) % 25 === 0 || i + 1 === todo.length) {
          const s = (performance.now() - started) / 1000;
          log(
            `  ${i + 1}/${todo.length} scored (${(s / (i + 1)).toFixed(1)} s each; ${reruns} unfiltered reruns)`,
          );
        }
      }
    } finally {
      await appender.close();
      await scorer.dispose();
    }
  }
  return chosen.map((t) => done.get(t.id)!);
}

const SCORE_ORDER_SEED = 15;
