import type { ChatModelFunctions, ChatWrapper } from 'node-llama-cpp';
import type { ToolCall, ToolSpec } from '../../tier-model.js';

/**
 * Function calling for the local tier, in node-llama-cpp's generic syntax: the chat wrapper documents
 * the functions in the prompt and the model calls one by writing `||call: name({...json...})`. The
 * wrapper renders that syntax; reading it back from the raw token loop (which LlamaChat would do, but
 * LlamaChat hides per-token probabilities, see chat-prompt.ts) is this module's job. Only wrappers using
 * the default call syntax are supported; others get a warning and no tools.
 */
export interface CallSyntax {
  /** Text that opens a call, e.g. "||call:" (matched without its optional trailing space). */
  prefix: string;
}

/** The call syntax of a wrapper, when it is the default one this parser reads. */
export function callSyntaxOf(wrapper: ChatWrapper): CallSyntax | undefined {
  const call = wrapper.settings.functions.call;
  const plain = (value: unknown) => {
    const json = (value as { toJSON?: () => unknown })?.toJSON?.() ?? value;
    const values = Array.isArray(json) ? json : [json];
    return values.map((v) => (typeof v === 'string' ? v : (v as { value?: unknown })?.value)).join('');
  };
  if (typeof call.prefix !== 'string' || plain(call.paramsPrefix) !== '(' || plain(call.suffix) !== ')') {
    return undefined;
  }
  return { prefix: call.prefix.trimEnd() };
}

/** OpenAI tools as node-llama-cpp's function documentation (their JSON Schemas used as given). */
export function availableFunctions(tools: readonly ToolSpec[]): ChatModelFunctions {
  return Object.fromEntries(
    tools.map((t) => [
      t.function.name,
      {
        ...(t.function.description ? { description: t.function.description } : {}),
        ...(t.function.parameters ? { params: t.function.parameters as never } : {}),
      },
    ]),
  );
}

export type CallParse =
  | { state: 'incomplete' }
  | { state: 'complete'; call: Omit<ToolCall, 'id'> }
  | { state: 'invalid'; reason: string };

const NAME = /^\s*([A-Za-z_][\w.-]*)\s*\(/;

/**
 * Reads the text after a call prefix: `name({...})`. Incomplete while the JSON arguments may still be
 * growing; complete once a `)` follows arguments that parse as a JSON object.
 */
export function parseCall(afterPrefix: string, known: readonly string[]): CallParse {
  const name = NAME.exec(afterPrefix);
  if (!name) {
    return /^\s*(?:[A-Za-z_][\w.-]*)?\s*$/.test(afterPrefix)
      ? { state: 'incomplete' }
      : { state: 'invalid', reason: 'no function name and "(" after the call prefix' };
  }
  if (!known.includes(name[1]!)) return { state: 'invalid', reason: `unknown function "${name[1]}"` };
  const rest = afterPrefix.slice(name[0].length);
  for (let close = rest.indexOf(')'); close !== -1; close = rest.indexOf(')', close + 1)) {
    const args = rest.slice(0, close).trim();
    try {
      const parsed: unknown = args === '' ? {} : JSON.parse(args);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
        return {
          state: 'complete',
          call: { type: 'function', function: { name: name[1]!, arguments: JSON.stringify(parsed) } },
        };
      }
    } catch {
      // The `)` was inside a string argument: read on.
    }
  }
  return { state: 'incomplete' };
}
