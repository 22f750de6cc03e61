import { randomInt } from 'node:crypto';
import { type LlamaModel, type SequenceEvaluateOptions, type Token, TokenBias } from 'node-llama-cpp';
import { type TierRequest, type TokenLogprob, UnsupportedParameterError } from '../../tier-model.js';

/**
 * OpenAI's sampling parameters as node-llama-cpp's evaluate options. Penalties and logit biases go into
 * llama.cpp's sampler chain ahead of the sampler itself, so they apply under greedy decoding too.
 * OpenAI's penalty formula is llama.cpp's: logit − count·frequency − [count > 0]·presence, over the
 * tokens generated so far.
 */
export type Sampling = Omit<SequenceEvaluateOptions, 'grammarEvaluationState' | 'seed'>;

/**
 * The options of the request's answers, checked now (a bad logit_bias is refused before anything is
 * generated); each answer gets its own, whose penalties read the tokens it generated so far.
 */
export function samplingOf(
  request: TierRequest,
  model: LlamaModel,
  maxTokens: number,
  deployment: string,
): (generated: () => Token[]) => Sampling {
  const penalised = request.frequency_penalty !== undefined || request.presence_penalty !== undefined;
  const tokenBias = request.logit_bias ? tokenBiasOf(request.logit_bias, model, deployment) : undefined;
  return (generated) => ({
    temperature: request.temperature ?? 0,
    ...(request.top_p !== undefined ? { topP: request.top_p } : {}),
    ...(penalised
      ? {
          repeatPenalty: {
            punishTokens: generated,
            maxPunishTokens: maxTokens,
            // 1 turns off llama.cpp's multiplicative penalty, which OpenAI does not have.
            penalty: 1,
            frequencyPenalty: request.frequency_penalty ?? 0,
            presencePenalty: request.presence_penalty ?? 0,
          },
        }
      : {}),
    ...(tokenBias ? { tokenBias } : {}),
  });
}

/**
 * `logit_bias` keys are token ids of the model's own vocabulary (as for any OpenAI-compatible server
 * running a local model); each bias is added to that token's logit. node-llama-cpp will not bias an
 * end-of-generation token (it skips them), so such a key is refused rather than silently dropped.
 */
function tokenBiasOf(bias: Record<string, number>, model: LlamaModel, deployment: string) {
  const vocabulary = model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length ?? 0;
  const entries = Object.entries(bias).map(([key, value]) => {
    const token = Number(key) as Token;
    if (!Number.isSafeInteger(token) || token >= vocabulary) {
      throw new UnsupportedParameterError(
        deployment,
        'logit_bias',
        `token ${key} is not in the local model's vocabulary of ${vocabulary} tokens`,
      );
    }
    if (model.tokenizer.isEogToken(token)) {
      throw new UnsupportedParameterError(
        deployment,
        'logit_bias',
        `token ${key} ends generation; the local tier cannot bias it`,
      );
    }
    return [token, value] as const;
  });
  const tokenBias = new TokenBias(model.tokenizer);
  for (const [token, value] of entries) tokenBias.set(token, { logit: value });
  return tokenBias;
}

/**
 * A random seed per answer unless the client gave one (then one per answer, derived from it). Unsigned
 * 32 bits: node-llama-cpp turns every negative seed into 0, and without a seed it takes the current
 * second, which would give answers started together the same sample.
 */
export function seedOf(request: TierRequest, choice: number): number {
  return ((request.seed ?? randomInt(2 ** 31)) + choice) >>> 0;
}

/**
 * A generated token as OpenAI reports it: its probability (from the sampling distribution, after
 * temperature and top_p) and, with `top_logprobs`, the most likely tokens at its position.
 */
export function tokenLogprob(
  model: LlamaModel,
  token: Token,
  confidence: number,
  probabilities: Map<Token, number> | undefined,
  top: number,
): TokenLogprob {
  const log = (p: number) => Math.log(Math.max(p, Number.MIN_VALUE));
  const entry: TokenLogprob = { token: model.detokenize([token]), logprob: log(confidence) };
  if (top > 0 && probabilities) {
    // node-llama-cpp's map is sorted most likely first.
    entry.top_logprobs = [...probabilities.entries()]
      .slice(0, top)
      .map(([t, p]) => ({ token: model.detokenize([t]), logprob: log(p) }));
  }
  return entry;
}
