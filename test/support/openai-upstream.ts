import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyReply } from 'fastify';
import { ChatCompletionRequestSchema } from '../../src/server/api-schema.js';
import { toTierRequest } from '../../src/tiers/openai-request.js';
import { buildChatCompletion, openAIError, toOpenAISse } from '../../src/tiers/openai-sse.js';
import {
  createLocalLlamaModel,
  type LocalLlamaModel,
} from '../../src/tiers/providers/local-llama/local-llama-model.js';
import { type TierModel, type TierRequest, toTierError } from '../../src/tiers/tier-model.js';
import { formatIssues } from '../../src/zod-issues.js';
import { defaultEncoderPath } from './default-encoder.js';

/**
 * A real OpenAI-compatible server on 127.0.0.1 serving a real TierModel (the local model in tests),
 * with switches that make it fail the ways real upstreams do. Tests point remote tiers, the HTTP
 * server's own tiers, or the official `openai` client at it.
 */
export type UpstreamFault =
  | { kind: 'status'; status: number; retryAfterSeconds?: number }
  /** Accepts the request and never answers. */
  | { kind: 'hang' }
  /** Destroys the connection before answering. */
  | { kind: 'reset' }
  /** Streams `afterDeltas` content chunks, then destroys the connection. */
  | { kind: 'drop-mid-stream'; afterDeltas: number }
  /** Sends `afterDeltas` content chunks, then a chunk that is not JSON. */
  | { kind: 'malformed-chunk'; afterDeltas: number }
  /** Waits before sending anything. */
  | { kind: 'slow-first-byte'; delayMs: number }
  /** Answers 200 with a body that is not JSON (plain), or a first SSE event that is not (streaming). */
  | { kind: 'invalid-json' };

export interface UpstreamRequestLog {
  /** The body as it arrived (parsed JSON), whether or not it was valid. */
  body: unknown;
  stream: boolean;
  fault: UpstreamFault['kind'] | 'none';
  /** What it ended with: an HTTP status, 'reset', 'hang', 'dropped', or 'client-gone'. */
  outcome: number | string;
}

export interface OpenAIUpstream {
  /** `http://127.0.0.1:<port>/v1` */
  baseUrl: string;
  readonly requests: readonly UpstreamRequestLog[];
  /** Every request gets `fault` until changed (undefined: healthy). */
  setFault(fault: UpstreamFault | undefined): void;
  /** The next requests get these faults, one each, before the standing one applies again. */
  queueFaults(...faults: UpstreamFault[]): void;
  close(): Promise<void>;
}

export async function startOpenAIUpstream(options: {
  model: TierModel;
  /** When set, requests must carry `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /**
   * Sees every valid request's raw body first; a value it returns is sent as the JSON answer instead of
   * generating one (how tests make a worker call a tool the small local model would not call itself),
   * or, as `{ chunks }`, streamed as those `chat.completion.chunk` events and `[DONE]`.
   */
  script?: (body: unknown) => unknown;
}): Promise<OpenAIUpstream> {
  const app = Fastify({ logger: false, forceCloseConnections: true });
  const requests: UpstreamRequestLog[] = [];
  const queued: UpstreamFault[] = [];
  let standing: UpstreamFault | undefined;
  let counter = 0;

  app.post('/v1/chat/completions', async (req, reply) => {
    const fault = queued.shift() ?? standing;
    // Validated as OpenAI validates: every parameter typed, an unknown field refused.
    const parsed = ChatCompletionRequestSchema.safeParse(req.body);
    const log: UpstreamRequestLog = {
      body: req.body,
      stream: parsed.success && parsed.data.stream === true,
      fault: fault?.kind ?? 'none',
      outcome: 200,
    };
    requests.push(log);
    if (options.apiKey && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      log.outcome = 401;
      return reply.code(401).send({
        error: { message: 'invalid api key', type: 'invalid_request_error', code: 'invalid_api_key' },
      });
    }
    if (!parsed.success) {
      log.outcome = 400;
      return reply
        .code(400)
        .send({ error: { message: formatIssues(parsed.error.issues), type: 'invalid_request_error' } });
    }
    const scripted = options.script?.(req.body);
    if (isScriptedStream(scripted)) {
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const chunk of scripted.chunks) reply.raw.write(`data: ${JSON.stringify(chunk)}\n\n`);
      reply.raw.end('data: [DONE]\n\n');
      return;
    }
    if (scripted !== undefined) return reply.send(scripted);
    const body = parsed.data;
    const controller = new AbortController();
    // A client that goes away stops the generation it asked for.
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) controller.abort();
    });

    switch (fault?.kind) {
      case 'status':
        log.outcome = fault.status;
        if (fault.retryAfterSeconds !== undefined)
          reply.header('retry-after', String(fault.retryAfterSeconds));
        return reply
          .code(fault.status)
          .send({ error: { message: `injected ${fault.status}`, type: 'server_error' } });
      case 'hang':
        log.outcome = 'hang';
        reply.hijack();
        return;
      case 'reset':
        log.outcome = 'reset';
        req.raw.socket.destroy();
        reply.hijack();
        return;
      case 'invalid-json':
        log.outcome = 'invalid-json';
        if (body.stream) {
          reply.hijack();
          reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
          reply.raw.end('data: {"id": "chatcmpl-broken", "choices": [{"delta": \n\n');
          return;
        }
        return reply.type('application/json').send('{"id": "chatcmpl-broken", "choices": [{"message": ');
      case 'slow-first-byte':
        try {
          await sleep(fault.delayMs, undefined, { signal: controller.signal });
        } catch {
          log.outcome = 'client-gone';
          reply.hijack();
          return;
        }
        break;
    }

    // The parameters reach the served model as they reach mechroute's own tiers.
    const request = toTierRequest(body);
    const meta = {
      id: `chatcmpl-up-${++counter}`,
      model: body.model,
      created: Math.floor(Date.now() / 1000),
      logprobs: body.logprobs === true,
    };

    if (!body.stream) {
      try {
        const result = await options.model.generate(request, { signal: controller.signal });
        if (fault?.kind === 'drop-mid-stream' || fault?.kind === 'malformed-chunk') {
          log.outcome = 'dropped';
          req.raw.socket.destroy();
          reply.hijack();
          return;
        }
        return reply.send(buildChatCompletion(result, meta));
      } catch (error) {
        const tierError = toTierError(error, undefined);
        log.outcome = tierError.status;
        return reply
          .code(tierError.status >= 400 && tierError.status < 600 ? tierError.status : 500)
          .send(openAIError(tierError));
      }
    }
    await streamAnswer(
      reply,
      request,
      meta,
      body.stream_options?.include_usage === true,
      fault,
      controller,
      log,
    );
  });

  async function streamAnswer(
    reply: FastifyReply,
    request: TierRequest,
    meta: { id: string; model: string; created: number; logprobs: boolean },
    includeUsage: boolean,
    fault: UpstreamFault | undefined,
    controller: AbortController,
    log: UpstreamRequestLog,
  ) {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    let contentChunks = 0;
    const breakAfter =
      fault?.kind === 'drop-mid-stream' || fault?.kind === 'malformed-chunk' ? fault.afterDeltas : undefined;
    for await (const line of toOpenAISse(options.model.stream(request, { signal: controller.signal }), {
      ...meta,
      includeUsage,
    })) {
      if (raw.destroyed) break;
      if (line.includes('"content":"') && !line.includes('"content":""')) contentChunks++;
      const breaking = breakAfter !== undefined && contentChunks >= breakAfter;
      if (breaking && fault?.kind === 'drop-mid-stream') {
        // Cut only once the delta is on the wire, so the client really has text before the drop.
        log.outcome = 'dropped';
        controller.abort();
        await new Promise<void>((resolve) => raw.write(line, () => resolve()));
        raw.socket?.destroy();
        return;
      }
      raw.write(line);
      if (breaking) {
        raw.write('data: {"choices": [{"delta": {"content": \n\n');
        log.outcome = 'malformed';
        controller.abort();
        raw.end();
        return;
      }
    }
    raw.end();
  }

  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    setFault(fault) {
      standing = fault;
    },
    queueFaults(...faults) {
      queued.push(...faults);
    },
    close: () => app.close(),
  };
}

const isScriptedStream = (value: unknown): value is { chunks: unknown[] } =>
  typeof value === 'object' && value !== null && Array.isArray((value as { chunks?: unknown }).chunks);

/** The default GGUF served by the local provider: what the upstreams of tests and benchmarks answer with. */
export function createUpstreamModel(sequences = 4): Promise<LocalLlamaModel> {
  return createLocalLlamaModel({
    modelPath: defaultEncoderPath(),
    tier: 'upstream',
    sequences,
    contextSize: 512,
  });
}
