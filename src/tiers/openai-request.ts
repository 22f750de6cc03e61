import { type ChatParams, ChatParamsShape } from './openai-chat-params.js';
import type { TierRequest } from './tier-model.js';

/**
 * A validated OpenAI chat request → what tiers take (TierRequest) and what the response builders need
 * (ResponseOptions), plus which parameters each kind of tier refuses. Pure: the route calls it, the
 * providers call the refusal tables, nothing here does I/O.
 */

/** How the answer goes back to the client, beyond what the tier produced. */
export interface ResponseOptions {
  /** Send the trailing usage chunk of a stream (`stream_options.include_usage`). */
  includeUsage: boolean;
  /** Pad stream chunks with random `obfuscation` text (`stream_options.include_obfuscation`). */
  obfuscate: boolean;
  /** The client asked for logprobs (a cascade asks tiers for them on its own account). */
  logprobs: boolean;
}

// Fields a tier never sees: `stream` is the call (generate or stream), the limit is renamed below.
const NOT_FORWARDED = new Set(['messages', 'stream', 'max_tokens', 'max_completion_tokens']);
const FORWARDED = Object.keys(ChatParamsShape).filter((key) => !NOT_FORWARDED.has(key));

/**
 * The tier request of a client's parameters: every OpenAI parameter it set (nulls dropped, since
 * null means the default), the output limit under one name. `logprobs: true` asks the tier for
 * logprobs whatever the client asked (the cascade's confidence signal); ResponseOptions says whether
 * the client sees them.
 */
export function toTierRequest(params: ChatParams, options: { logprobs?: boolean } = {}): TierRequest {
  const request: Record<string, unknown> = { messages: params.messages };
  for (const key of FORWARDED) {
    const value = params[key as keyof ChatParams];
    if (value !== null && value !== undefined) request[key] = value;
  }
  const limit = params.max_completion_tokens ?? params.max_tokens;
  if (limit != null) request.max_tokens = limit;
  if (params.max_completion_tokens != null) request.max_tokens_name = 'max_completion_tokens';
  if (options.logprobs) request.logprobs = true;
  return request as TierRequest;
}

export function responseOptionsOf(params: ChatParams): ResponseOptions {
  return {
    includeUsage: params.stream_options?.include_usage ?? false,
    obfuscate: params.stream_options?.include_obfuscation ?? false,
    logprobs: params.logprobs === true,
  };
}

/** A parameter a tier cannot honour, named as OpenAI names parameters in its errors. */
export interface Refusal {
  param: string;
  reason: string;
}

const wantsAudio = (request: TierRequest) =>
  request.audio !== undefined || (request.modalities ?? []).includes('audio');

/**
 * What an OpenAI-compatible upstream gets and mechroute cannot relay: streamed audio (whole answers
 * carry it back). Everything else is forwarded; the upstream decides what it accepts.
 */
export function remoteRefusal(request: TierRequest, streaming: boolean): Refusal | undefined {
  if (streaming && wantsAudio(request)) {
    return { param: 'audio', reason: 'audio answers are relayed without streaming only; drop stream' };
  }
  return undefined;
}

/**
 * What the local tier (a small GGUF through node-llama-cpp, text in and out) cannot do. Model-
 * dependent limits (the chat template's function calling, JSON Schema keywords, token ids) are the
 * provider's own checks on top of these.
 */
export function localRefusal(request: TierRequest): Refusal | undefined {
  const refuse = (param: string, reason: string): Refusal => ({ param, reason });
  if (wantsAudio(request)) {
    return refuse(request.audio ? 'audio' : 'modalities', 'the local tier answers in text only');
  }
  if (request.functions || request.function_call) {
    return refuse(
      request.functions ? 'functions' : 'function_call',
      'deprecated by OpenAI; the local tier takes tools and tool_choice',
    );
  }
  const messageRefusal = localMessageRefusal(request);
  if (messageRefusal) return messageRefusal;
  const nothingLocal: Array<[keyof TierRequest, string]> = [
    ['moderation', 'the local tier has no moderation model'],
    ['web_search_options', 'the local tier cannot search the web'],
    ['prediction', 'the local tier does not decode with predicted outputs'],
    ['verbosity', 'the local model has no verbosity setting'],
  ];
  for (const [param, reason] of nothingLocal) if (request[param] !== undefined) return refuse(param, reason);
  if (request.reasoning_effort !== undefined && request.reasoning_effort !== 'none') {
    return refuse('reasoning_effort', 'the local model does not reason before answering');
  }
  if (request.service_tier !== undefined && !['auto', 'default'].includes(request.service_tier)) {
    return refuse('service_tier', 'the local tier has one service tier, "default"');
  }
  if (request.store === true) return refuse('store', 'the local tier does not store completions');
  if (request.tools?.some((tool) => tool.type === 'custom')) {
    return refuse('tools', 'custom (free-form input) tools are not supported by the local tier');
  }
  const choice = request.tool_choice;
  if (typeof choice === 'object' && choice.type === 'custom') {
    return refuse('tool_choice', 'custom tools are not supported by the local tier');
  }
  return undefined;
}

function localMessageRefusal(request: TierRequest): Refusal | undefined {
  for (const [i, message] of request.messages.entries()) {
    const at = `messages[${i}]`;
    if (message.role === 'function') {
      return { param: `${at}.role`, reason: 'function messages are deprecated; use tool messages' };
    }
    if ('name' in message && message.name !== undefined) {
      return { param: `${at}.name`, reason: "the local model's chat template has no participant names" };
    }
    if (message.role === 'assistant' && (message.function_call || message.audio)) {
      return {
        param: `${at}.${message.function_call ? 'function_call' : 'audio'}`,
        reason: 'the local tier takes text and tool_calls in assistant turns',
      };
    }
    if (message.role === 'assistant' && message.tool_calls?.some((call) => call.type === 'custom')) {
      return { param: `${at}.tool_calls`, reason: 'custom tools are not supported by the local tier' };
    }
    if (Array.isArray(message.content)) {
      for (const [j, part] of message.content.entries()) {
        if (part.type !== 'text' && part.type !== 'refusal') {
          return {
            param: `${at}.content[${j}]`,
            reason: `the local model reads text only, not ${part.type}`,
          };
        }
      }
    }
  }
  return undefined;
}

/**
 * What an answer put together from several tier calls (live steps, worker–advisor) cannot honour: one
 * answer, in text, whose pieces come from different calls and tiers.
 */
export function composedAnswerRefusal(request: TierRequest, mode: string): Refusal | undefined {
  const why = `an answer in mode "${mode}" is put together from several tier calls`;
  if ((request.n ?? 1) > 1) return { param: 'n', reason: `${why}; it has one choice` };
  if (request.logprobs) return { param: 'logprobs', reason: `${why}; it has no one token distribution` };
  if (request.tools || request.functions) {
    return { param: request.tools ? 'tools' : 'functions', reason: `${why}; it calls no client tools` };
  }
  if (request.response_format && request.response_format.type !== 'text') {
    return { param: 'response_format', reason: `${why}; it cannot hold one format across calls` };
  }
  if (wantsAudio(request))
    return { param: request.audio ? 'audio' : 'modalities', reason: `${why}; text only` };
  if (request.prediction) return { param: 'prediction', reason: `${why}; no one output to predict` };
  if (request.stream_options?.include_obfuscation) {
    return { param: 'stream_options.include_obfuscation', reason: `${why}; its stream is not padded` };
  }
  return undefined;
}
