import {
  type LogprobSummary,
  meanLogprob,
  type StreamPart,
  type TierError,
  UpstreamProtocolError,
  UpstreamStatusError,
  UpstreamTruncatedError,
  type Usage,
} from '../../tier-model.js';
import {
  ChatCompletionChunkWireSchema,
  ErrorWireSchema,
  type LogprobTokenWire,
  toFinishReason,
  type UsageWire,
  usageFromWire,
} from './wire-schema.js';

export interface SseEvent {
  event: string | undefined;
  data: string;
}

/**
 * Text → server-sent events (the WHATWG rules that matter here: `data:` lines joined by newlines, one
 * optional space after the colon, comments and unknown fields ignored, CR, LF or CRLF line ends). A
 * chunk may end anywhere, even between the CR and LF of one line end.
 */
export function createSseEventStream(): TransformStream<string, SseEvent> {
  let buffer = '';
  let data: string[] = [];
  let event: string | undefined;
  const dispatch = (controller: TransformStreamDefaultController<SseEvent>) => {
    if (data.length > 0) controller.enqueue({ event, data: data.join('\n') });
    data = [];
    event = undefined;
  };
  const line = (text: string, controller: TransformStreamDefaultController<SseEvent>) => {
    if (text === '') return dispatch(controller);
    if (text.startsWith(':')) return;
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
  };
  return new TransformStream({
    transform(chunk, controller) {
      buffer += chunk;
      // A trailing CR may be the first half of a CRLF: keep it until the next chunk says.
      const held = buffer.endsWith('\r') ? '\r' : '';
      const lines = (held ? buffer.slice(0, -1) : buffer).replace(/\r\n?/g, '\n').split('\n');
      buffer = lines.pop()! + held;
      for (const text of lines) line(text, controller);
    },
    flush(controller) {
      // Lenient at the end: an unterminated last event is still read; its chunk is validated anyway.
      if (buffer.replace(/\r$/, '') !== '') line(buffer.replace(/\r$/, ''), controller);
      dispatch(controller);
    },
  });
}

export interface ChunkStreamOptions {
  deployment: string;
  wantLogprobs: boolean;
  /** Token counts to report when the upstream sends no usage. */
  estimateUsage(text: string): Usage;
  /** Scrubs secrets from upstream text before it is quoted in an error. */
  redact?(text: string): string;
}

/**
 * OpenAI `chat.completion.chunk` events → typed parts. Each chunk is safe-parsed; the first malformed
 * chunk, in-band upstream error, or an end with no finish becomes one `error` part and ends the stream,
 * so a broken upstream can never pass for a short answer. The finish part waits for `[DONE]` (or the
 * end) because the usage chunk follows the finish_reason chunk.
 */
export function createChunkPartStream(options: ChunkStreamOptions): TransformStream<SseEvent, StreamPart> {
  const { deployment } = options;
  const scrub = options.redact ?? ((t: string) => t);
  let text = '';
  let deltas = 0;
  let chunks = 0;
  let finishReason: string | undefined;
  let usage: UsageWire | undefined;
  const logprobs: LogprobTokenWire[] = [];
  let ended = false;

  const fail = (controller: TransformStreamDefaultController<StreamPart>, error: TierError) => {
    ended = true;
    controller.enqueue({ type: 'error', error });
    controller.terminate();
  };
  const finish = (controller: TransformStreamDefaultController<StreamPart>, warnings: string[]) => {
    ended = true;
    const summary: LogprobSummary | undefined =
      options.wantLogprobs && logprobs.length > 0
        ? { mean_logprob: meanLogprob(logprobs.map((l) => l.logprob)), tokens: logprobs }
        : undefined;
    if (options.wantLogprobs && !summary) warnings.push('the upstream returned no logprobs');
    if (!usage) warnings.push('the upstream sent no usage; token counts are estimated');
    controller.enqueue({
      type: 'finish',
      finish_reason: toFinishReason(finishReason ?? 'stop'),
      usage: usage ? usageFromWire(usage) : options.estimateUsage(text),
      ...(summary ? { logprobs: summary } : {}),
      ...(warnings.length ? { warnings } : {}),
    });
    controller.terminate();
  };

  return new TransformStream({
    transform(event, controller) {
      if (ended) return;
      chunks++;
      if (event.data.trim() === '[DONE]') {
        return finish(controller, finishReason ? [] : ['the upstream sent [DONE] without a finish_reason']);
      }
      let json: unknown;
      try {
        json = JSON.parse(event.data);
      } catch {
        return fail(
          controller,
          new UpstreamProtocolError(
            deployment,
            `stream chunk ${chunks} is not JSON: ${excerpt(scrub(event.data))}`,
          ),
        );
      }
      const upstreamError = ErrorWireSchema.safeParse(json);
      if (upstreamError.success)
        return fail(controller, inBandError(deployment, upstreamError.data.error, scrub));
      const parsed = ChatCompletionChunkWireSchema.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue?.path.length ? issue.path.join('.') : '(root)';
        return fail(
          controller,
          new UpstreamProtocolError(deployment, `stream chunk ${chunks}: ${where}: ${issue?.message}`),
        );
      }
      for (const choice of parsed.data.choices) {
        if ((choice.index ?? 0) !== 0) continue;
        const content = choice.delta?.content;
        if (content) {
          text += content;
          deltas++;
          controller.enqueue({ type: 'text-delta', text: content });
        }
        if (choice.logprobs?.content) logprobs.push(...choice.logprobs.content);
        if (choice.finish_reason) finishReason = choice.finish_reason;
      }
      if (parsed.data.usage) usage = parsed.data.usage;
    },
    flush(controller) {
      if (ended) return;
      // No [DONE] but a finish_reason: some servers simply close; the answer is complete.
      if (finishReason) finish(controller, []);
      else fail(controller, new UpstreamTruncatedError(deployment, deltas));
    },
  });
}

function inBandError(
  deployment: string,
  error: string | { message?: string | undefined; code?: string | number | null | undefined },
  scrub: (text: string) => string,
): TierError {
  const message = typeof error === 'string' ? error : (error.message ?? 'unspecified error');
  const code = typeof error === 'string' ? undefined : error.code;
  const status = typeof code === 'number' && code >= 400 && code < 600 ? code : 502;
  return new UpstreamStatusError(status, deployment, `error event in stream: ${excerpt(scrub(message))}`);
}

export const excerpt = (text: string, max = 200): string =>
  text.length > max ? `${JSON.stringify(text.slice(0, max))}…` : JSON.stringify(text);
