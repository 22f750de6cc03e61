import { availableParallelism } from 'node:os';
import type {
  ChatWrapper,
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaGrammar,
  LlamaModel,
  Token,
} from 'node-llama-cpp';
import { z } from 'zod';
import { sharedPrefixLength } from '../../../token-prefix.js';
import { localRefusal } from '../../openai-request.js';
import {
  type CallOptions,
  collectStream,
  createPartChannel,
  type GenerateResult,
  LocalModelError,
  type StreamPart,
  stopList,
  type TierModel,
  type TierRequest,
  toTierError,
  UnsupportedParameterError,
  UpstreamAbortedError,
  UpstreamTimeoutError,
} from '../../tier-model.js';
import { type AnswerOutcome, type AnswerPlan, generateAnswer } from './answer-loop.js';
import { renderChatPrompt } from './chat-prompt.js';
import {
  availableFunctions,
  callNameGrammar,
  callSyntaxOf,
  type ToolPlan,
  toolPlanOf,
} from './function-calls.js';
import { toGrammarSchema } from './json-schema-grammar.js';
import { samplingOf, seedOf } from './sampling.js';
import { createSequencePool, type SequencePool } from './sequence-pool.js';

// node-llama-cpp types the schema by its literal value; ours is built at run time.
type JsonSchemaInput = Parameters<Llama['createGrammarForJsonSchema']>[0];

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

  // Read from node-llama-cpp's grammar file once, on the first request that asks for JSON.
  let jsonGrammar: Promise<LlamaGrammar> | undefined;

  /** Grammar of `response_format`; a strict schema the grammar cannot hold is refused. */
  async function formatGrammar(request: TierRequest, warnings: string[]): Promise<LlamaGrammar | undefined> {
    const format = request.response_format;
    if (!format || format.type === 'text') return undefined;
    if (format.type === 'json_object' || !format.json_schema.schema) {
      jsonGrammar ??= llama.getGrammarFor('json').catch((error: unknown) => {
        jsonGrammar = undefined;
        throw error;
      });
      return jsonGrammar;
    }
    const { schema, unenforced } = toGrammarSchema(format.json_schema.schema);
    checkEnforced('response_format', format.json_schema.strict === true, unenforced, warnings);
    return llama.createGrammarForJsonSchema(schema as JsonSchemaInput);
  }

  function checkEnforced(param: string, strict: boolean, unenforced: string[], warnings: string[]) {
    if (unenforced.length === 0) return;
    if (strict) {
      throw new UnsupportedParameterError(
        deploymentId,
        param,
        `strict, but the local tier's grammar cannot enforce ${unenforced.join('; ')}`,
      );
    }
    warnings.push(`${param}: not enforced by the local tier (not strict): ${unenforced.join('; ')}`);
  }

  /** The call grammars of the offered functions; refused when the template has no call syntax we read. */
  async function callGrammars(
    request: TierRequest,
    tools: ToolPlan,
    warnings: string[],
  ): Promise<NonNullable<AnswerPlan['calls']>> {
    const syntax = callSyntaxOf(wrapper);
    if (!syntax) {
      throw new UnsupportedParameterError(
        deploymentId,
        'tools',
        `the local model's ${wrapper.wrapperName} chat template writes function calls in a syntax the local tier does not read`,
      );
    }
    if (tools.mode === 'auto' && request.response_format && request.response_format.type !== 'text') {
      throw new UnsupportedParameterError(
        deploymentId,
        'response_format',
        'with tools the model may call (tool_choice auto), the local tier cannot also hold its text to a format; force the call or leave out the tools',
      );
    }
    const params = new Map<string, LlamaGrammar>();
    for (const tool of tools.offered) {
      const at = (request.tools ?? []).indexOf(tool);
      const { schema, unenforced } = toGrammarSchema(
        tool.function.parameters ?? { type: 'object', properties: {} },
      );
      checkEnforced(`tools[${at}].function.parameters`, tool.function.strict === true, unenforced, warnings);
      params.set(tool.function.name, await llama.createGrammarForJsonSchema(schema as JsonSchemaInput));
    }
    const names = await llama.createGrammar({
      grammar: callNameGrammar(tools.offered.map((t) => t.function.name)),
    });
    return { syntax, mode: tools.mode, names, params };
  }

  async function planOf(request: TierRequest, warnings: string[]): Promise<AnswerPlan> {
    const refused = localRefusal(request);
    if (refused) throw new UnsupportedParameterError(deploymentId, refused.param, refused.reason);
    const tools = toolPlanOf(request);
    const calls = tools ? await callGrammars(request, tools, warnings) : undefined;
    const format = await formatGrammar(request, warnings);
    const prompt = renderChatPrompt(
      model,
      wrapper,
      request.messages,
      warnings,
      tools ? availableFunctions(tools.offered) : undefined,
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
    const logprobs = request.logprobs === true;
    if (logprobs && (request.temperature ?? 0) > 0) {
      warnings.push(
        'logprobs are taken from the sampling distribution (after temperature and top_p), not the raw model',
      );
    }
    const sampling = samplingOf(request, model, maxTokens, deploymentId);
    return {
      model,
      prompt,
      maxTokens,
      // A schema grammar ends its JSON with four line breaks (node-llama-cpp's stop trigger).
      stops: [...stopList(request.stop), ...prompt.textStops, ...(format ? ['\n\n\n\n'] : [])],
      sampling,
      ...(format ? { format } : {}),
      ...(calls ? { calls } : {}),
      logprobs,
      topLogprobs: request.top_logprobs ?? 0,
    };
  }

  /**
   * Generates the `n` answers of a request, each on a sequence of its own (so they batch together),
   * and pushes one finish with every answer's end and the usage of all of them (the prompt once).
   */
  async function run(
    request: TierRequest,
    signal: AbortSignal,
    push: (part: StreamPart) => void,
  ): Promise<void> {
    const warnings: string[] = [];
    const plan = await planOf(request, warnings);
    const { prompt } = plan;
    // One answer failing stops the others: the request has failed.
    const inner = new AbortController();
    const onAbort = () => inner.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    let started = false;
    let cached = 0;
    const answer = async (choice: number): Promise<AnswerOutcome> => {
      const sequence = await pool.acquire(inner.signal, (s) =>
        sharedPrefixLength(s.contextTokens, prompt.tokens),
      );
      try {
        const reused = await reusePromptPrefix(sequence, prompt.tokens);
        cached = Math.max(cached, reused);
        if (!started) {
          started = true;
          push({ type: 'start', tier: opts.tier, deployment: deploymentId, warnings });
        }
        return await generateAnswer(
          sequence,
          plan,
          { input: prompt.tokens.slice(reused), choice, seed: seedOf(request, choice) },
          inner.signal,
          push,
        );
      } finally {
        pool.release(sequence);
      }
    };
    let outcomes: AnswerOutcome[];
    try {
      outcomes = await Promise.all(
        Array.from({ length: request.n ?? 1 }, (_, choice) =>
          answer(choice).catch((error: unknown) => {
            inner.abort(error);
            throw error;
          }),
        ),
      );
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    const [first, ...more] = outcomes;
    push({
      type: 'finish',
      ...first!.end,
      ...(more.length ? { more_choices: more.map((o, i) => ({ ...o.end, index: i + 1 })) } : {}),
      usage: {
        input_tokens: prompt.tokens.length,
        output_tokens: outcomes.reduce((sum, o) => sum + o.outputTokens, 0),
        cached_input_tokens: cached,
      },
    });
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
