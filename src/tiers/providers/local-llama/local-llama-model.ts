import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type {
  ChatWrapper,
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaModel,
  Token,
} from 'node-llama-cpp';
import { z } from 'zod';
import { sharedPrefixLength } from '../../../token-prefix.js';
import {
  type CallOptions,
  collectStream,
  createPartChannel,
  type FinishReason,
  type GenerateResult,
  LocalModelError,
  meanLogprob,
  type StreamPart,
  stopList,
  type TierModel,
  type TierRequest,
  type ToolCall,
  toTierError,
  UpstreamAbortedError,
  UpstreamTimeoutError,
} from '../../tier-model.js';
import { endingTokenStop, renderChatPrompt } from './chat-prompt.js';
import { availableFunctions, callSyntaxOf, parseCall } from './function-calls.js';
import { createSequencePool, type SequencePool } from './sequence-pool.js';
import { createStopMatcher } from './stop-matcher.js';

export const LocalLlamaOptionsSchema = z.object({
  modelPath: z.string().min(1),
  tier: z.string().min(1),
  deployment: z.string().min(1).default('local'),
  /** Generations that run at once, each on its own context sequence (batched together by llama.cpp). */
  sequences: z.number().int().min(1).max(64).default(4),
  /** Tokens each sequence holds: prompt plus answer. */
  contextSize: z.number().int().min(64).default(2048),
  /** Requests allowed to wait for a free sequence; beyond, a retryable 429. */
  maxQueue: z.number().int().min(0).default(64),
  /**
   * ggml worker threads. Half the cores by default: the encoder shares this process's cores, and
   * ggml's spinning workers on an oversubscribed CPU collapse throughput (measured 16 → 1.3 tok/s on
   * 2 busy cores going from 1 to 2 threads).
   */
  threads: z
    .number()
    .int()
    .min(1)
    .default(() => Math.max(1, Math.floor(availableParallelism() / 2))),
  /** max_tokens when the request sets none. */
  defaultMaxTokens: z.number().int().min(1).default(512),
  /** Whole-request limit, queueing included. */
  timeoutMs: z.number().int().min(1).optional(),
});
export type LocalLlamaOptions = z.input<typeof LocalLlamaOptionsSchema>;

export interface LocalLlamaModel extends TierModel {
  readonly provider: 'local';
  /** Name of the chat template in use (resolved from the GGUF). */
  readonly chatTemplate: string;
  readonly contextSize: number;
  /** Sequences free and requests waiting, for metrics. */
  load(): { idle: number; waiting: number };
  dispose(): Promise<void>;
}

interface SharedModel {
  model: Promise<LlamaModel>;
  refs: number;
}
// One copy of the weights per file per process, however many tiers or test servers serve it.
const loadedModels = new Map<string, SharedModel>();

async function acquireModel(llama: Llama, path: string): Promise<LlamaModel> {
  let shared = loadedModels.get(path);
  if (!shared) {
    shared = { model: llama.loadModel({ modelPath: path }), refs: 0 };
    loadedModels.set(path, shared);
    shared.model.catch(() => loadedModels.delete(path));
  }
  shared.refs++;
  return shared.model;
}

async function releaseModel(path: string): Promise<void> {
  const shared = loadedModels.get(path);
  if (!shared || --shared.refs > 0) return;
  loadedModels.delete(path);
  await (await shared.model).dispose();
}

/**
 * Serves a GGUF on this host. `llama` must be the process's one node-llama-cpp instance; by default it
 * is the encoder's (`loadActivationBinding().llama`), so the addon and the tier share one backend.
 */
export async function createLocalLlamaModel(
  options: LocalLlamaOptions,
  deps: { llama?: Llama } = {},
): Promise<LocalLlamaModel> {
  const opts = LocalLlamaOptionsSchema.parse(options);
  const deploymentId = `${opts.tier}/${opts.deployment}`;
  const llama =
    deps.llama ??
    (await import('../../../encoder/native-binding.js').then((m) => m.loadActivationBinding())).llama;
  const { resolveChatWrapper, GeneralChatWrapper } = await import('node-llama-cpp');
  let model: LlamaModel;
  try {
    model = await acquireModel(llama, opts.modelPath);
  } catch (error) {
    throw new LocalModelError(
      deploymentId,
      `cannot load ${opts.modelPath}: ${(error as Error).message}`,
      503,
      error,
    );
  }
  let context: LlamaContext;
  try {
    context = await model.createContext({
      sequences: opts.sequences,
      contextSize: opts.contextSize,
      threads: opts.threads,
    });
  } catch (error) {
    await releaseModel(opts.modelPath);
    throw new LocalModelError(
      deploymentId,
      `cannot create a context: ${(error as Error).message}`,
      503,
      error,
    );
  }
  // GeneralChatWrapper only for a GGUF with no recognisable template; logged through chatTemplate.
  const wrapper: ChatWrapper = resolveChatWrapper(model, { warningLogs: false }) ?? new GeneralChatWrapper();
  const sequences = Array.from({ length: opts.sequences }, () => context.getSequence());
  const pool: SequencePool<LlamaContextSequence> = createSequencePool(sequences, {
    maxQueue: opts.maxQueue,
    onQueueFull: () =>
      new LocalModelError(
        deploymentId,
        `all ${opts.sequences} sequences busy and ${opts.maxQueue} requests queued`,
        429,
      ),
  });
  let disposed = false;

  async function run(
    request: TierRequest,
    signal: AbortSignal,
    push: (part: StreamPart) => void,
  ): Promise<void> {
    const warnings: string[] = [];
    const offered = request.tools?.length && request.tool_choice !== 'none' ? request.tools : undefined;
    const syntax = offered ? callSyntaxOf(wrapper) : undefined;
    if (offered && !syntax) {
      warnings.push(
        `no function calling with the ${wrapper.wrapperName} chat template: the tools were not offered`,
      );
    }
    if (syntax && request.tool_choice === 'required') {
      warnings.push(
        'tool_choice "required" is not enforced by the local tier: the model may answer without a call',
      );
    }
    const toolNames = syntax ? offered!.map((t) => t.function.name) : [];
    const prompt = renderChatPrompt(
      model,
      wrapper,
      request.messages,
      warnings,
      syntax ? availableFunctions(offered!) : undefined,
    );
    const room = context.contextSize - prompt.tokens.length;
    if (room < 1) {
      throw new LocalModelError(
        deploymentId,
        `the prompt has ${prompt.tokens.length} tokens but the context holds ${context.contextSize}`,
        400,
      );
    }
    const wanted = request.max_tokens ?? opts.defaultMaxTokens;
    const maxTokens = Math.min(wanted, room);
    if (maxTokens < wanted)
      warnings.push(`max_tokens lowered to ${maxTokens}: the context holds ${context.contextSize} tokens`);
    const temperature = request.temperature ?? 0;
    if (request.logprobs && temperature > 0) {
      warnings.push(
        'logprobs are taken from the sampling distribution (after temperature and top_p), not the raw model',
      );
    }
    const stops = createStopMatcher([
      ...stopList(request.stop),
      ...prompt.textStops,
      ...(syntax ? [syntax.prefix] : []),
    ]);

    const sequence = await pool.acquire(signal, (s) => sharedPrefixLength(s.contextTokens, prompt.tokens));
    try {
      const cached = await reusePromptPrefix(sequence, prompt.tokens);
      push({ type: 'start', tier: opts.tier, deployment: deploymentId, warnings });
      const generated: Token[] = [];
      const logprobs: number[] = [];
      let finish: FinishReason = 'stop';
      const finishWarnings: string[] = [];
      // Where a call's `name(args)` starts in the answer, once the model wrote the call prefix.
      let callStart: number | undefined;
      let toolCall: ToolCall | undefined;
      let lastText = '';
      const evaluation = sequence.evaluateWithMetadata(
        prompt.tokens.slice(cached),
        { confidence: true },
        {
          temperature,
          ...(request.top_p !== undefined ? { topP: request.top_p } : {}),
          ...(request.seed !== undefined ? { seed: request.seed } : {}),
        },
      );
      // The loop ends by itself when the model emits an end-of-generation token.
      for await (const { token, confidence } of evaluation) {
        if (signal.aborted) break;
        generated.push(token);
        logprobs.push(Math.log(Math.max(confidence, Number.MIN_VALUE)));
        const tokenStop = endingTokenStop(generated, prompt.tokenStops);
        const visible = tokenStop ? generated.slice(0, generated.length - tokenStop) : generated;
        const text = model.detokenize(visible);
        lastText = text;
        if (callStart !== undefined) {
          const parsed = parseCall(text.slice(callStart), toolNames);
          if (parsed.state === 'complete') {
            toolCall = { id: `call_${randomUUID().replaceAll('-', '').slice(0, 24)}`, ...parsed.call };
            finish = 'tool_calls';
            break;
          }
          if (parsed.state === 'invalid' || tokenStop) break;
        } else {
          const { emit, stopped } = stops.update(text);
          if (emit) push({ type: 'text-delta', text: emit });
          if (stopped && syntax && !tokenStop && text.startsWith(syntax.prefix, stops.emitted.length)) {
            callStart = stops.emitted.length + syntax.prefix.length;
          } else if (stopped || tokenStop) break;
        }
        if (generated.length >= maxTokens) {
          finish = 'length';
          break;
        }
      }
      if (signal.aborted) throw signal.reason;
      if (callStart !== undefined && !toolCall) {
        // A call begun and never completed is not dropped: the client gets it as the text it is.
        const raw = lastText.slice(stops.emitted.length);
        if (raw) push({ type: 'text-delta', text: raw });
        finishWarnings.push('the model began a function call it did not complete; it is returned as text');
      }
      const rest = stops.flush();
      if (rest) push({ type: 'text-delta', text: rest });
      push({
        type: 'finish',
        finish_reason: finish,
        ...(toolCall ? { tool_calls: [toolCall] } : {}),
        ...(finishWarnings.length ? { warnings: finishWarnings } : {}),
        usage: {
          input_tokens: prompt.tokens.length,
          output_tokens: generated.length,
          cached_input_tokens: cached,
        },
        ...(request.logprobs
          ? {
              logprobs: {
                mean_logprob: meanLogprob(logprobs),
                tokens: generated.map((t, i) => ({ token: model.detokenize([t]), logprob: logprobs[i]! })),
              },
            }
          : {}),
      });
    } finally {
      pool.release(sequence);
    }
  }

  function stream(request: TierRequest, callOptions: CallOptions = {}): AsyncIterable<StreamPart> {
    const controller = new AbortController();
    const channel = createPartChannel(() => controller.abort(new UpstreamAbortedError(deploymentId)));
    const onCallerAbort = () => controller.abort(new UpstreamAbortedError(deploymentId));
    callOptions.signal?.addEventListener('abort', onCallerAbort, { once: true });
    if (callOptions.signal?.aborted) onCallerAbort();
    const timeoutMs = Math.min(
      opts.timeoutMs ?? Number.POSITIVE_INFINITY,
      callOptions.timeoutMs ?? Number.POSITIVE_INFINITY,
    );
    const timer = Number.isFinite(timeoutMs)
      ? setTimeout(
          () => controller.abort(new UpstreamTimeoutError(deploymentId, 'total', timeoutMs)),
          Math.max(1, timeoutMs),
        )
      : undefined;
    const done = disposed
      ? Promise.reject(new LocalModelError(deploymentId, 'the model has been disposed', 503))
      : run(request, controller.signal, channel.push);
    done
      .catch((error: unknown) => channel.push({ type: 'error', error: toTierError(error, deploymentId) }))
      .finally(() => {
        clearTimeout(timer);
        callOptions.signal?.removeEventListener('abort', onCallerAbort);
        channel.close();
      });
    return channel.iterable;
  }

  return {
    specificationVersion: 'v1',
    id: deploymentId,
    provider: 'local',
    chatTemplate: wrapper.wrapperName,
    contextSize: context.contextSize,
    stream,
    generate: (request, callOptions): Promise<GenerateResult> => collectStream(stream(request, callOptions)),
    load: () => ({ idle: pool.idle, waiting: pool.waiting }),
    async dispose() {
      if (disposed) return;
      disposed = true;
      pool.close(new LocalModelError(deploymentId, 'the model has been disposed', 503));
      await context.dispose();
      await releaseModel(opts.modelPath);
    },
  };
}

/**
 * Keeps the part of the sequence's KV cache that is a prefix of `tokens` (a system prompt, or the
 * prompt and steps so far of a per-step answer) and drops the rest, so only the new tokens are
 * evaluated; returns how many are reused. The last prompt token is always evaluated again: its logits
 * give the first generated token. node-llama-cpp re-evaluates whatever a sliding-window cache cannot keep.
 */
async function reusePromptPrefix(sequence: LlamaContextSequence, tokens: Token[]): Promise<number> {
  const keep = Math.min(sharedPrefixLength(sequence.contextTokens, tokens), tokens.length - 1);
  if (keep < sequence.nextTokenIndex) {
    await sequence.eraseContextTokenRanges([{ start: keep, end: sequence.nextTokenIndex }]);
  }
  return sequence.nextTokenIndex;
}
