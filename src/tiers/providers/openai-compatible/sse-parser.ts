import {
  type Annotation,
  type ChoiceEnd,
  choiceEnd,
  meanLogprob,
  type StreamPart,
  type TierError,
  type TokenLogprob,
  UpstreamProtocolError,
  UpstreamStatusError,
  UpstreamTruncatedError,
  type Usage,
} from '../../tier-model.js';
import {
  ChatCompletionChunkWireSchema,
  ErrorWireSchema,
  toFinishReason,
  tokenLogprobsFromWire,
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

/** What the chunks of one answer (`choices[].index`) added up to so far. */
interface ChoiceState {
  finishReason?: string;
  logprobs: TokenLogprob[];
  refusal?: string;
  calls: Map<number, { id: string; name: string; arguments: string }>;
  annotations: Annotation[];
}

/**
 * OpenAI `chat.completion.chunk` events → typed parts, for every answer of the request (n > 1 streams
 * several, told apart by `choices[].index`). Each chunk is safe-parsed; the first malformed chunk,
 * in-band upstream error, or an end with no finish becomes one `error` part and ends the stream, so a
 * broken upstream can never pass for a short answer. The finish part waits for `[DONE]` (or the end)
 * because the usage chunk follows the finish_reason chunk; it carries each answer's tool calls whole,
 * as well as the deltas that streamed them.
 */
export function createChunkPartStream(options: ChunkStreamOptions): TransformStream<SseEvent, StreamPart> {
  const { deployment } = options;
  const scrub = options.redact ?? ((t: string) => t);
  let text = '';
  let deltas = 0;
  let chunks = 0;
  let usage: UsageWire | undefined;
  const choices = new Map<number, ChoiceState>();
  const stateOf = (index: number): ChoiceState => {
    let state = choices.get(index);
    if (!state) {
      state = { logprobs: [], calls: new Map(), annotations: [] };
      choices.set(index, state);
    }
    return state;
  };
  let ended = false;

  const fail = (controller: TransformStreamDefaultController<StreamPart>, error: TierError) => {
    ended = true;
    controller.enqueue({ type: 'error', error });
    controller.terminate();
  };
  const endOf = (state: ChoiceState): ChoiceEnd =>
    choiceEnd({
      finish_reason: toFinishReason(state.finishReason ?? 'stop'),
      ...(options.wantLogprobs && state.logprobs.length > 0
        ? {
            logprobs: {
              mean_logprob: meanLogprob(state.logprobs.map((l) => l.logprob)),
              tokens: state.logprobs,
            },
          }
        : {}),
      tool_calls: [...state.calls.entries()]
        .sort(([a], [b]) => a - b)
        .map(([, call]) => ({
          id: call.id,
          type: 'function' as const,
          function: { name: call.name, arguments: call.arguments },
        })),
      ...(state.refusal !== undefined ? { refusal: state.refusal } : {}),
      annotations: state.annotations,
    });
  const finish = (controller: TransformStreamDefaultController<StreamPart>, warnings: string[]) => {
    ended = true;
    const first = stateOf(0);
    if (options.wantLogprobs && first.logprobs.length === 0)
      warnings.push('the upstream returned no logprobs');
    if (!usage) warnings.push('the upstream sent no usage; token counts are estimated');
    const more = [...choices.entries()]
      .filter(([index]) => index !== 0)
      .sort(([a], [b]) => a - b)
      .map(([index, state]) => ({ ...endOf(state), index }));
    controller.enqueue({
      type: 'finish',
      ...endOf(first),
      ...(more.length ? { more_choices: more } : {}),
      usage: usage ? usageFromWire(usage) : options.estimateUsage(text),
      ...(warnings.length ? { warnings } : {}),
    });
    controller.terminate();
  };

  return new TransformStream({
    transform(event, controller) {
      if (ended) return;
      chunks++;
      if (event.data.trim() === '[DONE]') {
        const finished = choices.get(0)?.finishReason !== undefined;
        return finish(controller, finished ? [] : ['the upstream sent [DONE] without a finish_reason']);
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
        const index = choice.index ?? 0;
        const state = stateOf(index);
        const of = index === 0 ? {} : { choice: index };
        const tokens = choice.logprobs?.content ? tokenLogprobsFromWire(choice.logprobs.content) : [];
        state.logprobs.push(...tokens);
        const content = choice.delta?.content;
        if (content) {
          if (index === 0) text += content;
          deltas++;
          const withLogprobs = options.wantLogprobs && tokens.length > 0 ? { logprobs: tokens } : {};
          controller.enqueue({ type: 'text-delta', text: content, ...of, ...withLogprobs });
        }
        const refusal = choice.delta?.refusal;
        if (refusal) {
          state.refusal = (state.refusal ?? '') + refusal;
          controller.enqueue({ type: 'refusal-delta', text: refusal, ...of });
        }
        for (const piece of choice.delta?.tool_calls ?? []) {
          const call = state.calls.get(piece.index) ?? { id: '', name: '', arguments: '' };
          state.calls.set(piece.index, call);
          if (piece.id) call.id = piece.id;
          if (piece.function?.name) call.name += piece.function.name;
          const args = piece.function?.arguments ?? '';
          call.arguments += args;
          deltas++;
          controller.enqueue({
            type: 'tool-call-delta',
            ...of,
            call: piece.index,
            ...(piece.id ? { id: piece.id } : {}),
            ...(piece.function?.name ? { name: piece.function.name } : {}),
            arguments: args,
          });
        }
        state.annotations.push(...(choice.delta?.annotations ?? []));
        if (choice.finish_reason) state.finishReason = choice.finish_reason;
      }
      if (parsed.data.usage) usage = parsed.data.usage;
    },
    flush(controller) {
      if (ended) return;
      // No [DONE] but a finish_reason: some servers simply close; the answer is complete.
      if (choices.get(0)?.finishReason !== undefined) finish(controller, []);
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
