import { z } from 'zod';
import {
  type CallOptions,
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
  UpstreamAbortedError,
  UpstreamNetworkError,
  UpstreamProtocolError,
  UpstreamRequestError,
  UpstreamStatusError,
  UpstreamTimeoutError,
  type Usage,
} from '../../tier-model.js';
import { createChunkPartStream, createSseEventStream, excerpt } from './sse-parser.js';
import { ChatCompletionWireSchema, ErrorWireSchema, toFinishReason, usageFromWire } from './wire-schema.js';

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
  const apiKey = () => (opts.apiKeyEnv ? env[opts.apiKeyEnv] || undefined : undefined);
  const scrub = (text: string) => redact(text, [apiKey()]);

  /** The request on the wire; a value JSON cannot carry is the request's fault, not the upstream's. */
  function body(request: TierRequest, stream: boolean, warnings: string[]): string {
    try {
      return serialize(request, stream, warnings);
    } catch (error) {
      throw new UpstreamRequestError(id, `cannot serialize the request: ${(error as Error).message}`);
    }
  }

  function serialize(request: TierRequest, stream: boolean, warnings: string[]): string {
    if (request.messages.some((m) => typeof m.content !== 'string' && m.content !== null)) {
      warnings.push('content parts are forwarded as they are; the upstream decides what it accepts');
    }
    if (stream && request.tools?.length) warnings.push('tool calls are read from non-streamed answers only');
    return JSON.stringify({
      model: opts.model,
      messages: request.messages,
      ...(request.max_tokens !== undefined ? { max_tokens: request.max_tokens } : {}),
      ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
      ...(request.top_p !== undefined ? { top_p: request.top_p } : {}),
      ...(request.stop !== undefined ? { stop: request.stop } : {}),
      ...(request.seed !== undefined ? { seed: request.seed } : {}),
      ...(request.logprobs ? { logprobs: true } : {}),
      ...(request.tools?.length ? { tools: request.tools } : {}),
      ...(request.tool_choice !== undefined && request.tools?.length
        ? { tool_choice: request.tool_choice }
        : {}),
      stream,
      ...(stream ? { stream_options: { include_usage: true } } : {}),
    });
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

  async function send(payload: string, signal: AbortSignal): Promise<Response> {
    const key = apiKey();
    if (opts.apiKeyEnv && !key) throw new MissingCredentialsError(id, opts.apiKeyEnv);
    const response = await fetchFn(url, {
      method: 'POST',
      headers: {
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
    const warnings: string[] = [];
    const payload = body(request, false, warnings);
    const control = callControl(callOptions, false);
    try {
      let text: string;
      try {
        const response = await control.race(send(payload, control.signal));
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
      const choice = parsed.data.choices[0]!;
      const content = choice.message.content ?? '';
      const tokens = choice.logprobs?.content ?? undefined;
      if (request.logprobs && !tokens?.length) warnings.push('the upstream returned no logprobs');
      const usage = parsed.data.usage;
      if (!usage) warnings.push('the upstream sent no usage; token counts are estimated');
      const toolCalls = choice.message.tool_calls ?? [];
      return {
        text: content,
        ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
        finish_reason: toFinishReason(choice.finish_reason ?? 'stop'),
        usage: usage ? usageFromWire(usage) : estimate(request, content),
        ...(request.logprobs && tokens?.length
          ? { logprobs: { mean_logprob: meanLogprob(tokens.map((t) => t.logprob)), tokens } }
          : {}),
        warnings,
        tier: opts.tier,
        deployment: id,
      };
    } finally {
      control.done();
    }
  }

  async function* stream(request: TierRequest, callOptions: CallOptions = {}): AsyncGenerator<StreamPart> {
    const warnings: string[] = [];
    let payload: string;
    try {
      payload = body(request, true, warnings);
    } catch (error) {
      yield { type: 'error', error: toTierError(error, id) };
      return;
    }
    const control = callControl(callOptions, true);
    let reader: ReadableStreamDefaultReader<StreamPart> | undefined;
    let finished = false;
    try {
      let response: Response;
      try {
        response = await control.race(send(payload, control.signal));
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
