import type { ChatHistoryItem, ChatWrapper, LlamaModel, LlamaText, Token } from 'node-llama-cpp';
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
): RenderedPrompt {
  const history: ChatHistoryItem[] = [];
  for (const message of messages) {
    const text = messageText(message, warnings);
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
        warnings.push('tool messages are passed to the local model as user text');
        history.push({ type: 'user', text });
        break;
    }
  }
  // An empty model turn at the end leaves the template open at the start of the answer.
  history.push({ type: 'model', response: [] });
  const state = wrapper.generateContextState({ chatHistory: history });
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
