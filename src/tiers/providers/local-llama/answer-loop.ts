import { randomUUID } from 'node:crypto';
import {
  type LlamaContextSequence,
  type LlamaGrammar,
  LlamaGrammarEvaluationState,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import {
  type ChoiceEnd,
  choiceEnd,
  type FinishReason,
  type FunctionToolCall,
  meanLogprob,
  type StreamPart,
  type TokenLogprob,
} from '../../tier-model.js';
import { endingTokenStop, type RenderedPrompt } from './chat-prompt.js';
import { type CallSyntax, calledName, type ToolPlan } from './function-calls.js';
import { type Sampling, tokenLogprob } from './sampling.js';
import { createStopMatcher } from './stop-matcher.js';

/** What the answers of one request share: the prompt, the limits, the grammars. */
export interface AnswerPlan {
  model: LlamaModel;
  prompt: RenderedPrompt;
  maxTokens: number;
  /** The client's stop strings and the template's text stops. */
  stops: string[];
  /** Options of one answer, whose penalties read the tokens it generated so far. */
  sampling(generated: () => Token[]): Sampling;
  /** Holds the text to `response_format` (JSON or a JSON Schema). */
  format?: LlamaGrammar;
  calls?: {
    syntax: CallSyntax;
    mode: ToolPlan['mode'];
    /** One of the offered names, then "(". */
    names: LlamaGrammar;
    /** Each offered function's arguments, by name. */
    params: ReadonlyMap<string, LlamaGrammar>;
  };
  logprobs: boolean;
  topLogprobs: number;
}

export interface AnswerOutcome {
  end: ChoiceEnd;
  /** Tokens of the answer, those of a forced call opening included (max_tokens counts them too). */
  outputTokens: number;
}

/** Where the answer is: free text (or JSON), a call's name, a call's arguments. */
type Phase = { kind: 'text' } | { kind: 'name' } | { kind: 'params'; call: FunctionToolCall };

const callId = () => `call_${randomUUID().replaceAll('-', '').slice(0, 24)}`;

/** JSON whose root object or array has just closed: the answer (or the call's arguments) is complete. */
function closesJson(text: string): boolean {
  const trimmed = text.trimEnd();
  if (!trimmed.endsWith('}') && !trimmed.endsWith(']')) return false;
  try {
    JSON.parse(trimmed);
    return true;
  } catch {
    return false;
  }
}

/**
 * Generates one answer on `sequence`, pushing its deltas as parts of answer `choice`. Runs in phases,
 * each one evaluation under its own grammar, as node-llama-cpp's LlamaChat does for function calls
 * (which this loop cannot use: it hides per-token probabilities): free text (held to the format's
 * grammar, if any) until the model writes the call prefix; then one of the offered names; then that
 * function's arguments under its parameter schema. A forced call (tool_choice required or a named
 * function) starts with the prefix (and the name) as input, so the model can only call. Between phases
 * the context is resynchronised to end exactly at the boundary: the last sampled token was never
 * evaluated, so the text it should have contributed is tokenised and fed instead.
 */
export async function generateAnswer(
  sequence: LlamaContextSequence,
  plan: AnswerPlan,
  start: { input: Token[]; choice: number; seed: number },
  signal: AbortSignal,
  push: (part: StreamPart) => void,
): Promise<AnswerOutcome> {
  const { model, calls } = plan;
  const of = start.choice === 0 ? {} : { choice: start.choice };
  const generated: Token[] = [];
  const sampling = plan.sampling(() => generated);
  const stops = createStopMatcher([...plan.stops, ...(calls?.mode === 'auto' ? [calls.syntax.prefix] : [])]);
  const logprobs: TokenLogprob[] = [];
  // Text length after each text token, so each delta carries the logprobs of the tokens it shows.
  const textEnds: number[] = [];
  let attached = 0;
  const deltaLogprobs = () => {
    let upTo = attached;
    while (upTo < textEnds.length && textEnds[upTo]! <= stops.emitted.length) upTo++;
    const batch = logprobs.slice(attached, upTo);
    attached = upTo;
    return batch.length > 0 ? { logprobs: batch } : {};
  };
  const pushText = (text: string) => {
    if (text) push({ type: 'text-delta', text, ...of, ...(plan.logprobs ? deltaLogprobs() : {}) });
  };

  let input = start.input;
  let phase: Phase = { kind: 'text' };
  let forced = 0;
  const openCall = (name: string): Phase => {
    const call: FunctionToolCall = { id: callId(), type: 'function', function: { name, arguments: '' } };
    push({ type: 'tool-call-delta', ...of, call: 0, id: call.id, name, arguments: '' });
    return { kind: 'params', call };
  };
  if (calls && calls.mode !== 'auto') {
    const named = typeof calls.mode === 'object' ? calls.mode.name : undefined;
    const opening = model.tokenize(named ? `${calls.syntax.written}${named}(` : calls.syntax.written);
    input = [...input, ...opening];
    forced = opening.length;
    phase = named ? openCall(named) : { kind: 'name' };
  }

  let finish: FinishReason = 'stop';
  let phaseTokens: Token[] = [];
  while (true) {
    const grammar =
      phase.kind === 'text'
        ? plan.format
        : phase.kind === 'name'
          ? calls!.names
          : calls!.params.get(phase.call.function.name)!;
    const evaluation = sequence.evaluateWithMetadata(
      input,
      { confidence: plan.logprobs, probabilities: plan.logprobs && plan.topLogprobs > 0 },
      {
        ...sampling,
        seed: start.seed,
        ...(grammar ? { grammarEvaluationState: new LlamaGrammarEvaluationState({ model, grammar }) } : {}),
      },
    );
    let next: { phase: Phase; input: Token[] } | undefined;
    let done = false;
    for await (const out of evaluation) {
      if (signal.aborted) break;
      const { token } = out;
      generated.push(token);
      phaseTokens.push(token);
      if (phase.kind === 'text') {
        if (plan.logprobs) {
          const { confidence, probabilities } = out as {
            confidence?: number;
            probabilities?: Map<Token, number>;
          };
          logprobs.push(tokenLogprob(model, token, confidence ?? 1, probabilities, plan.topLogprobs));
        }
        const tokenStop = endingTokenStop(phaseTokens, plan.prompt.tokenStops);
        const text = model.detokenize(tokenStop ? phaseTokens.slice(0, -tokenStop) : phaseTokens);
        textEnds.push(text.length);
        const { emit, stopped } = stops.update(text);
        pushText(emit);
        if (stopped && calls && !tokenStop && text.startsWith(calls.syntax.prefix, stops.emitted.length)) {
          const end = stops.emitted.length + calls.syntax.prefix.length;
          const evaluated = model.detokenize(phaseTokens.slice(0, -1));
          const rest = model.tokenize(text.slice(evaluated.length, end));
          next = { phase: { kind: 'name' }, input: rest.length > 0 ? rest : [token] };
        } else if (stopped || tokenStop || (plan.format && closesJson(text))) {
          done = true;
        }
      } else if (phase.kind === 'name') {
        const name = calledName(model.detokenize(phaseTokens));
        if (name) next = { phase: openCall(name), input: [token] };
      } else {
        const args = model.detokenize(phaseTokens);
        // A half-received multi-byte character shows as U+FFFD: wait for the rest of it.
        const settled = args.endsWith('\uFFFD') ? args.slice(0, -1) : args;
        const sent = phase.call.function.arguments;
        if (settled.length > sent.length) {
          push({ type: 'tool-call-delta', ...of, call: 0, arguments: settled.slice(sent.length) });
          phase.call.function.arguments = settled;
        }
        if (closesJson(settled)) {
          finish = 'tool_calls';
          done = true;
        }
      }
      if (!done && !next && forced + generated.length >= plan.maxTokens) {
        finish = 'length';
        done = true;
      }
      if (done || next) break;
    }
    if (signal.aborted) throw signal.reason;
    if (!next) break;
    phase = next.phase;
    input = next.input;
    phaseTokens = [];
  }
  pushText(stops.flush());
  const call = phase.kind === 'params' ? phase.call : undefined;
  return {
    end: choiceEnd({
      finish_reason: finish,
      // A call cut short by max_tokens is returned as far as it got, as OpenAI does.
      ...(call ? { tool_calls: [call] } : {}),
      ...(plan.logprobs
        ? {
            logprobs: {
              mean_logprob: meanLogprob(logprobs.map((l) => l.logprob)),
              tokens: logprobs.slice(0, attached),
            },
          }
        : {}),
    }),
    outputTokens: generated.length + forced,
  };
}
