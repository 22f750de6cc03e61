import { z } from 'zod';
import { envValue } from '../../../config/deployment-env.js';
import { remoteRefusal } from '../../openai-request.js';
import {
  type CallOptions,
  type Choice,
  choiceEnd,
  type GenerateResult,
  MissingCredentialsError,
  meanLogprob,
  parseRetryAfter,
  redact,
  type StreamPart,
  type TierError,
  type TierModel,
  type TierRequest,
  toTierError,
  UnsupportedParameterError,
  UpstreamAbortedError,
  UpstreamNetworkError,
  UpstreamProtocolError,
  UpstreamRequestError,
  UpstreamStatusError,
  UpstreamTimeoutError,
  type Usage,
} from '../../tier-model.js';
import { createChunkPartStream, createSseEventStream, excerpt } from './sse-parser.js';
import {
  ChatCompletionWireSchema,
  type ChoiceWire,
  ErrorWireSchema,
  toFinishReason,
  tokenLogprobsFromWire,
  usageFromWire,
} from './wire-schema.js';

export const OpenAICompatibleOptionsSchema = z.object({
  tier: z.string().min(1),
  /** Name of this deployment within its tier (index or host by default, chosen by the pool). */
  deployment: z.string().min(1),
  /** Up to and including the version, e.g. `https://api.openai.com/v1`, `http://127.0.0.1:8000/v1`. */
  baseUrl: z.url(),
  model: z.string().min(1),
  /** Name of the environment variable holding the API key; none for keyless local servers. */
  apiKeyEnv: z.string().min(1).optional(),
  /** Whole request, streaming included. */
  timeoutMs: z.number().int().min(1).default(60_000),
  /**
   * Streams only: until the first body byte. A JSON answer has nothing to send before it is complete,
   * so only `timeoutMs` bounds it.
   */
  firstByteTimeoutMs: z.number().int().min(1).optional(),
  headers: z.record(z.string(), z.string()).default({}),
});
export type OpenAICompatibleOptions = z.input<typeof OpenAICompatibleOptionsSchema>;

export interface OpenAICompatibleDeps {
  fetch?: typeof fetch;
  env?: NodeJS.ProcessEnv;
}

export interface OpenAICompatibleModel extends TierModel {
  readonly provider: 'openai';
  /** False when the configured key variable is unset: the deployment cannot be called. */
  hasCredentials(): boolean;
}

// Bounded so a misbehaving upstream cannot make us buffer an unbounded error page.
const MAX_ERROR_BODY = 8 * 1024;

/**
 * Any OpenAI-compatible `/chat/completions` endpoint. The key is read from the environment on every
 * call (so rotation needs no restart) and only ever placed in the Authorization header; upstream text
 * quoted in errors is scrubbed of it.
 */
export function createOpenAICompatibleModel(
  options: OpenAICompatibleOptions,
  deps: OpenAICompatibleDeps = {},
): OpenAICompatibleModel {
  const opts = OpenAICompatibleOptionsSchema.parse(options);
  const fetchFn = deps.fetch ?? globalThis.fetch;
  const env = deps.env ?? process.env;
  const id = `${opts.tier}/${opts.deployment}`;
  const url = `${opts.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  const firstByteMs = Math.min(opts.firstByteTimeoutMs ?? opts.timeoutMs, opts.timeoutMs);
  const apiKey = () => (opts.apiKeyEnv ? envValue(env, opts.apiKeyEnv) : undefined);
  const scrub = (text: string) => redact(text, [apiKey()]);

  /**
   * The upstream's body: every parameter of the request as the client sent it (the provider is
   * OpenAI-compatible, so it takes them all or answers for itself), our deployment's model name, and
   * usage asked for on streams (costs are charged from it). Serialising a validated request cannot
   * fail; if it ever did, that is this request's fault, not the upstream's, so no retry or breaker.
   */
  function body(request: TierRequest, stream: boolean): string {
    const { messages, max_tokens, max_tokens_name, stream_options, ...params } = request;
    try {
      return JSON.stringify({
        model: opts.model,
        messages,
        ...params,
        ...(max_tokens !== undefined ? { [max_tokens_name ?? 'max_tokens']: max_tokens } : {}),
        stream,
        ...(stream ? { stream_options: { ...stream_options, include_usage: true } } : {}),
      });
    } catch (error) {
      throw new UpstreamRequestError(id, `cannot serialize the request: ${(error as Error).message}`);
    }
  }

  /** One call's abort plumbing: caller abort, first-byte and total timers, all as TierErrors. */
  function callControl(callOptions: CallOptions, streaming: boolean) {
    const { signal } = callOptions;
    const controller = new AbortController();
    const onCallerAbort = () => controller.abort(new UpstreamAbortedError(id));
    signal?.addEventListener('abort', onCallerAbort, { once: true });
    if (signal?.aborted) onCallerAbort();
    const totalMs = Math.max(1, Math.min(opts.timeoutMs, callOptions.timeoutMs ?? opts.timeoutMs));
    const firstMs = Math.min(firstByteMs, totalMs);
    const total = setTimeout(() => controller.abort(new UpstreamTimeoutError(id, 'total', totalMs)), totalMs);
    let firstByte: NodeJS.Timeout | undefined = streaming
      ? setTimeout(() => controller.abort(new UpstreamTimeoutError(id, 'first byte', firstMs)), firstMs)
      : undefined;
    // An injected fetch need not tie its body to the signal, so every wait also races the abort.
    let rejectAborted: (reason: unknown) => void = () => {};
    const aborted = new Promise<never>((_resolve, reject) => {
      rejectAborted = reject;
    });
    aborted.catch(() => {});
    const onAbort = () => rejectAborted(controller.signal.reason);
    controller.signal.addEventListener('abort', onAbort, { once: true });
    return {
      signal: controller.signal,
      race: <T>(promise: Promise<T>): Promise<T> => Promise.race([promise, aborted]),
      gotFirstByte() {
        clearTimeout(firstByte);
        firstByte = undefined;
      },
      /** The reason we aborted, if we did; else the thrown error as a network/protocol failure. */
      failure(error: unknown): TierError {
        if (controller.signal.aborted) return toTierError(controller.signal.reason, id);
        return new UpstreamNetworkError(id, error);
      },
      cancel() {
        controller.abort(new UpstreamAbortedError(id));
      },
      done() {
        clearTimeout(total);
        clearTimeout(firstByte);
        signal?.removeEventListener('abort', onCallerAbort);
        // undici keeps the signal given to fetch until its Request is finalized (a FinalizationRegistry),
        // and through this listener it kept `aborted` and every read raced against it: a call's whole
        // answer stayed on the heap for GC cycles after it ended (~40 MB at 130 req/s, measured).
        controller.signal.removeEventListener('abort', onAbort);
      },
    };
  }

  async function send(
    payload: string,
    signal: AbortSignal,
    extra: CallOptions['headers'],
  ): Promise<Response> {
    const key = apiKey();
    if (opts.apiKeyEnv && !key) throw new MissingCredentialsError(id, opts.apiKeyEnv);
    const response = await fetchFn(url, {
      method: 'POST',
      headers: {
        ...extra,
        ...opts.headers,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...(key ? { authorization: `Bearer ${key}` } : {}),
      },
      body: payload,
      signal,
    });
    if (response.ok) return response;
    throw new UpstreamStatusError(
      response.status,
      id,
      await errorDetail(response),
      parseRetryAfter(response.headers),
    );
  }

  async function errorDetail(response: Response): Promise<string> {
    let text = '';
    try {
      text = (await response.text()).slice(0, MAX_ERROR_BODY);
    } catch {
      return '';
    }
    let message = text;
    try {
      const parsed = ErrorWireSchema.safeParse(JSON.parse(text));
      if (parsed.success) {
        const e = parsed.data.error;
        message = typeof e === 'string' ? e : (e.message ?? text);
      }
    } catch {
      // Not JSON (an HTML error page from a proxy): quote the start of it.
    }
    return excerpt(scrub(message.trim()));
  }

  // Roughly 4 characters a token: only used when an upstream omits usage, and flagged as estimated.
  const estimate = (request: TierRequest, text: string): Usage => ({
    input_tokens: Math.ceil(JSON.stringify(request.messages).length / 4),
    output_tokens: Math.ceil(text.length / 4),
  });

  async function generate(request: TierRequest, callOptions: CallOptions = {}): Promise<GenerateResult> {
    const payload = body(request, false);
    const control = callControl(callOptions, false);
    const warnings: string[] = [];
    try {
      let text: string;
      try {
        const response = await control.race(send(payload, control.signal, callOptions.headers));
        text = await control.race(response.text());
      } catch (error) {
        throw error instanceof UpstreamStatusError || error instanceof MissingCredentialsError
          ? error
          : control.failure(error);
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new UpstreamProtocolError(id, `the body is not JSON: ${excerpt(scrub(text))}`);
      }
      const parsed = ChatCompletionWireSchema.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new UpstreamProtocolError(id, `${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
      }
      const choices = parsed.data.choices
        .map((choice, position) => ({
          ...choiceFromWire(choice, request.logprobs === true),
          index: choice.index ?? position,
        }))
        .sort((a, b) => a.index - b.index);
      const [first, ...more] = choices;
      if (request.logprobs && !first!.logprobs) warnings.push('the upstream returned no logprobs');
      const usage = parsed.data.usage;
      if (!usage) warnings.push('the upstream sent no usage; token counts are estimated');
      const { index: _first, ...firstChoice } = first!;
      return {
        ...firstChoice,
        ...(more.length ? { more_choices: more } : {}),
        usage: usage ? usageFromWire(usage) : estimate(request, choices.map((c) => c.text).join('')),
        warnings,
        tier: opts.tier,
        deployment: id,
      };
    } finally {
      control.done();
    }
  }

  async function* stream(request: TierRequest, callOptions: CallOptions = {}): AsyncGenerator<StreamPart> {
    const refused = remoteRefusal(request, true);
    if (refused) {
      yield { type: 'error', error: new UnsupportedParameterError(id, refused.param, refused.reason) };
      return;
    }
    let payload: string;
    try {
      payload = body(request, true);
    } catch (error) {
      yield { type: 'error', error: toTierError(error, id) };
      return;
    }
    const control = callControl(callOptions, true);
    const warnings: string[] = [];
    let reader: ReadableStreamDefaultReader<StreamPart> | undefined;
    let finished = false;
    try {
      let response: Response;
      try {
        response = await control.race(send(payload, control.signal, callOptions.headers));
      } catch (error) {
        finished = true;
        const failure =
          error instanceof UpstreamStatusError || error instanceof MissingCredentialsError
            ? error
            : control.failure(error);
        yield { type: 'error', error: failure };
        return;
      }
      if (!response.body) {
        finished = true;
        yield { type: 'error', error: new UpstreamProtocolError(id, 'the streaming response has no body') };
        return;
      }
      yield { type: 'start', tier: opts.tier, deployment: id, warnings };
      reader = response.body
        .pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(chunk, controller) {
              control.gotFirstByte();
              controller.enqueue(chunk);
            },
          }),
        )
        .pipeThrough(new TextDecoderStream())
        .pipeThrough(createSseEventStream())
        .pipeThrough(
          createChunkPartStream({
            deployment: id,
            wantLogprobs: request.logprobs === true,
            estimateUsage: (text) => estimate(request, text),
            redact: scrub,
          }),
        )
        .getReader();
      while (true) {
        let next: Awaited<ReturnType<typeof reader.read>>;
        try {
          next = await control.race(reader.read());
        } catch (error) {
          finished = true;
          yield { type: 'error', error: control.failure(error) };
          return;
        }
        if (next.done) {
          // The chunk stream always ends with finish or error; reaching here means it already did.
          finished = true;
          return;
        }
        if (next.value.type === 'finish' || next.value.type === 'error') finished = true;
        yield next.value;
        if (finished) return;
      }
    } finally {
      control.done();
      // The consumer stopped early: close the upstream connection instead of draining it.
      if (!finished) control.cancel();
      reader?.cancel().catch(() => {});
    }
  }

  return {
    specificationVersion: 'v1',
    id,
    provider: 'openai',
    hasCredentials: () => !opts.apiKeyEnv || apiKey() !== undefined,
    generate,
    stream,
  };
}

/** One answer of a JSON reply in our terms (its index is set by the caller). */
function choiceFromWire(choice: ChoiceWire, wantLogprobs: boolean): Omit<Choice, 'index'> {
  const tokens = choice.logprobs?.content;
  return {
    text: choice.message.content ?? '',
    ...choiceEnd({
      finish_reason: toFinishReason(choice.finish_reason ?? 'stop'),
      ...(wantLogprobs && tokens?.length
        ? {
            logprobs: {
              mean_logprob: meanLogprob(tokens.map((t) => t.logprob)),
              tokens: tokenLogprobsFromWire(tokens),
            },
          }
        : {}),
      tool_calls: choice.message.tool_calls ?? [],
      ...(choice.message.refusal != null ? { refusal: choice.message.refusal } : {}),
      annotations: choice.message.annotations ?? [],
      ...(choice.message.audio ? { audio: choice.message.audio } : {}),
    }),
  };
}
