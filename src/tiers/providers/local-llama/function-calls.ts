import type { ChatModelFunctions, ChatWrapper } from 'node-llama-cpp';
import type { FunctionTool, TierRequest } from '../../tier-model.js';

/**
 * Function calling for the local tier, in node-llama-cpp's generic syntax: the chat wrapper documents
 * the functions in the prompt and the model calls one by writing `||call: name({...json...})`. The
 * wrapper renders that syntax; the answer loop (answer-loop.ts) reads it back as LlamaChat would
 * (LlamaChat hides per-token probabilities, see chat-prompt.ts): once the model opens a call, a grammar
 * holds it to a known name and then to that function's parameter schema. Only wrappers using the
 * default call syntax are supported; a request with tools to any other is refused.
 */
export interface CallSyntax {
  /** Text that opens a call, e.g. "||call:" (matched without its optional trailing space). */
  prefix: string;
  /** The same as the wrapper writes it, trailing space included: what a forced call starts with. */
  written: string;
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
  return { prefix: call.prefix.trimEnd(), written: call.prefix };
}

/** OpenAI tools as node-llama-cpp's function documentation (their JSON Schemas used as given). */
export function availableFunctions(tools: readonly FunctionTool[]): ChatModelFunctions {
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

/** Which functions the model is shown, and whether (and which) it must call. */
export interface ToolPlan {
  offered: FunctionTool[];
  /** `auto`: it may call one; `required`: it must call one of `offered`; a name: it must call that one. */
  mode: 'auto' | 'required' | { name: string };
}

/** OpenAI's tools and tool_choice as a plan; undefined when no function may be called. */
export function toolPlanOf(request: Pick<TierRequest, 'tools' | 'tool_choice'>): ToolPlan | undefined {
  const tools = (request.tools ?? []).filter((t): t is FunctionTool => t.type === 'function');
  const choice = request.tool_choice ?? 'auto';
  if (tools.length === 0 || choice === 'none') return undefined;
  if (choice === 'auto' || choice === 'required') return { offered: tools, mode: choice };
  if (choice.type === 'function') return { offered: tools, mode: { name: choice.function.name } };
  if (choice.type === 'allowed_tools') {
    const allowed = new Set(
      choice.allowed_tools.tools.flatMap((t) => (t.type === 'function' ? [t.function.name] : [])),
    );
    const offered = tools.filter((t) => allowed.has(t.function.name));
    return offered.length ? { offered, mode: choice.allowed_tools.mode } : undefined;
  }
  return undefined;
}

/**
 * GBNF for what follows a call prefix: an optional space, one of the names, the opening parenthesis.
 * Names are OpenAI's `[a-zA-Z0-9_-]`, so they need no escaping inside a GBNF string.
 */
export function callNameGrammar(names: readonly string[]): string {
  return `root ::= " "? (${names.map((n) => `"${n}"`).join(' | ')}) "("`;
}

/** The function name of the text the name grammar produced, once it is complete. */
export function calledName(text: string): string | undefined {
  return /^ ?([a-zA-Z0-9_-]+)\($/.exec(text)?.[1];
}
