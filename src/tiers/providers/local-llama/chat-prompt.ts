import type {
  ChatHistoryItem,
  ChatModelFunctions,
  ChatModelResponse,
  ChatWrapper,
  LlamaModel,
  LlamaText,
  Token,
} from 'node-llama-cpp';
import { type ChatMessage, messageText } from '../../tier-model.js';

export interface RenderedPrompt {
  tokens: Token[];
  /** Stop triggers that are plain text, matched on the detokenized answer. */
  textStops: string[];
  /** Stop triggers holding special tokens, matched on the tail of the generated token ids. */
  tokenStops: Token[][];
}

/**
 * Renders OpenAI messages with the model's own chat template. node-llama-cpp's chat wrapper is used
 * for the rendering alone: generation runs on the raw sequence, the only path that reports each
 * sampled token's probability (needed for logprobs), which LlamaChat does not expose.
 */
export function renderChatPrompt(
  model: LlamaModel,
  wrapper: ChatWrapper,
  messages: readonly ChatMessage[],
  warnings: string[],
  functions?: ChatModelFunctions,
): RenderedPrompt {
  const history: ChatHistoryItem[] = [];
  // Tool results are rendered inside the call that asked for them (the wrapper's call/result syntax).
  const answered = new Map<string, string>();
  for (const message of messages) {
    if (message.role === 'tool') answered.set(message.tool_call_id, messageText(message));
  }
  const rendered = new Set<string>();
  for (const message of messages) {
    const text = messageText(message);
    if (message.role === 'assistant' && message.tool_calls?.length) {
      const response: ChatModelResponse['response'] = text ? [text] : [];
      for (const call of message.tool_calls) {
        // Custom (free-form) tool calls are refused before a prompt is rendered (localRefusal).
        if (call.type !== 'function') continue;
        let params: unknown;
        try {
          params = JSON.parse(call.function.arguments);
        } catch {
          params = call.function.arguments;
        }
        const result = answered.get(call.id);
        if (result !== undefined) rendered.add(call.id);
        response.push({ type: 'functionCall', name: call.function.name, params, result: result ?? null });
      }
      history.push({ type: 'model', response });
      continue;
    }
    if (message.role === 'tool' && rendered.has(message.tool_call_id)) continue;
    switch (message.role) {
      case 'system':
      case 'developer':
        history.push({ type: 'system', text });
        break;
      case 'user':
        history.push({ type: 'user', text });
        break;
      case 'assistant':
        history.push({ type: 'model', response: [text] });
        break;
      case 'tool':
        warnings.push('a tool message answering no earlier call is passed to the local model as user text');
        history.push({ type: 'user', text });
        break;
      case 'function':
        // Refused before a prompt is rendered (localRefusal): deprecated, and it names no call.
        break;
    }
  }
  // An empty model turn at the end leaves the template open at the start of the answer.
  history.push({ type: 'model', response: [] });
  const state = wrapper.generateContextState({
    chatHistory: history,
    ...(functions ? { availableFunctions: functions, documentFunctionParams: true } : {}),
  });
  const textStops: string[] = [];
  const tokenStops: Token[][] = [];
  for (const trigger of state.stopGenerationTriggers) {
    const plain = plainText(trigger);
    if (plain !== undefined) {
      if (plain.length > 0) textStops.push(plain);
    } else {
      const tokens = trigger.tokenize(model.tokenizer);
      if (tokens.length > 0) tokenStops.push(tokens);
    }
  }
  return { tokens: state.contextText.tokenize(model.tokenizer), textStops, tokenStops };
}

/** The trigger's text if it holds no special tokens (those can only be matched as token ids). */
function plainText(text: LlamaText): string | undefined {
  const json = text.toJSON();
  const values = Array.isArray(json) ? json : [json];
  return values.every((v) => typeof v === 'string') ? (values as string[]).join('') : undefined;
}

/** Length of the token stop that the generated tokens end with, or 0. */
export function endingTokenStop(generated: readonly Token[], stops: readonly Token[][]): number {
  for (const stop of stops) {
    if (stop.length === 0 || stop.length > generated.length) continue;
    const offset = generated.length - stop.length;
    if (stop.every((t, i) => generated[offset + i] === t)) return stop.length;
  }
  return 0;
}
