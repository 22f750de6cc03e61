import { z } from 'zod';
import {
  type ChatMessage,
  type GenerateResult,
  TierError,
  type TierRequest,
  type ToolCall,
  type ToolSpec,
  type Usage,
} from '../tiers/tier-model.js';
import { formatIssuesInline } from '../zod-issues.js';

/**
 * The worker–advisor pattern: the worker (a cheap tier) solves the task and may call `ask_advisor`,
 * which forwards its question to the frontier tier. The frontier is a budgeted tool, not the default
 * executor: a hard per-task budget of calls, and once it is spent the tool answers with a refusal the
 * worker reads like any tool result, so it carries on alone instead of failing.
 */
export const ASK_ADVISOR = 'ask_advisor';

export const ASK_ADVISOR_TOOL: ToolSpec = {
  type: 'function',
  function: {
    name: ASK_ADVISOR,
    description:
      'Ask a stronger model (the advisor) one question about this task. Calls are limited and costly: ' +
      'ask only when stuck, with a specific, self-contained question.',
    parameters: {
      type: 'object',
      properties: { question: { type: 'string', description: 'The question for the advisor.' } },
      required: ['question'],
      additionalProperties: false,
    },
  },
};

const AskAdvisorArgsSchema = z.strictObject({ question: z.string().trim().min(1, 'must not be empty') });

export const refusalText = (budget: number) =>
  `ask_advisor refused: the budget of ${budget} advisor call${budget === 1 ? '' : 's'} for this task is spent. ` +
  'Do not call ask_advisor again; finish the task on your own.';

export type AdvisorCallOutcome = 'answered' | 'refused' | 'failed' | 'invalid';

export interface AdvisorCallRecord {
  call_id: string;
  outcome: AdvisorCallOutcome;
  question?: string;
  /** What the worker got back as the tool result. */
  result: string;
  usage?: Usage;
  cost_usd: number;
}

export interface AdvisorRunResult {
  /** The worker's final answer. */
  final: GenerateResult;
  calls: AdvisorCallRecord[];
  /** Worker turns taken (each one tier call). */
  rounds: number;
  worker_usage: Usage;
}

export interface AdvisorLoopDeps {
  callWorker(request: TierRequest): Promise<GenerateResult>;
  /** Forwards a question (with the task it is about) to the advisor tier. */
  callAdvisor(question: string): Promise<GenerateResult>;
  /** USD of an advisor answer. */
  adviceCost(usage: Usage): number;
  onCall?(record: AdvisorCallRecord): void;
}

export interface AdvisorLoopOptions {
  request: TierRequest;
  budget: number;
  maxRounds: number;
}

export async function runAdvisorLoop(
  deps: AdvisorLoopDeps,
  options: AdvisorLoopOptions,
): Promise<AdvisorRunResult> {
  const messages: ChatMessage[] = [...options.request.messages];
  const calls: AdvisorCallRecord[] = [];
  const workerUsage: Usage = { input_tokens: 0, output_tokens: 0 };
  let spent = 0;
  for (let round = 1; ; round += 1) {
    // The last round offers no tool, so the task ends with an answer however the worker behaves.
    const last = round >= options.maxRounds;
    const result = await deps.callWorker({
      ...options.request,
      messages,
      ...(last ? {} : { tools: [ASK_ADVISOR_TOOL], tool_choice: 'auto' as const }),
    });
    workerUsage.input_tokens += result.usage.input_tokens;
    workerUsage.output_tokens += result.usage.output_tokens;
    const toolCalls = result.tool_calls ?? [];
    if (last || toolCalls.length === 0) {
      return { final: { ...result, usage: workerUsage }, calls, rounds: round, worker_usage: workerUsage };
    }
    messages.push({
      role: 'assistant',
      content: result.text.length > 0 ? result.text : null,
      tool_calls: toolCalls,
    });
    for (const call of toolCalls) {
      const record = await answerCall(call);
      calls.push(record);
      deps.onCall?.(record);
      messages.push({ role: 'tool', tool_call_id: call.id, content: record.result });
    }
  }

  async function answerCall(call: ToolCall): Promise<AdvisorCallRecord> {
    const base = { call_id: call.id, cost_usd: 0 };
    if (call.type !== 'function' || call.function.name !== ASK_ADVISOR) {
      const name = call.type === 'function' ? call.function.name : call.custom.name;
      return {
        ...base,
        outcome: 'invalid',
        result: `unknown tool "${name}": the only tool is ${ASK_ADVISOR}`,
      };
    }
    let args: unknown;
    try {
      args = JSON.parse(call.function.arguments);
    } catch {
      return { ...base, outcome: 'invalid', result: `${ASK_ADVISOR}: the arguments are not JSON` };
    }
    const parsed = AskAdvisorArgsSchema.safeParse(args);
    if (!parsed.success) {
      return { ...base, outcome: 'invalid', result: `${ASK_ADVISOR}: ${formatIssuesInline(parsed.error)}` };
    }
    const question = parsed.data.question;
    if (spent >= options.budget)
      return { ...base, outcome: 'refused', question, result: refusalText(options.budget) };
    // A failed call still spends the budget: it may have cost money, and retrying is the worker's choice.
    spent += 1;
    try {
      const advice = await deps.callAdvisor(question);
      return {
        ...base,
        outcome: 'answered',
        question,
        result: advice.text,
        usage: advice.usage,
        cost_usd: deps.adviceCost(advice.usage),
      };
    } catch (error) {
      if (!(error instanceof TierError)) throw error;
      return {
        ...base,
        outcome: 'failed',
        question,
        result: `ask_advisor failed: the advisor is unavailable (${error.code})`,
      };
    }
  }
}

/** The advisor's messages: its role, the task as the worker got it, and the worker's question. */
export function advisorMessages(task: string, question: string): ChatMessage[] {
  return [
    {
      role: 'system',
      content:
        'You advise a smaller model that is solving a task. Answer its question briefly and concretely; ' +
        'do not solve more than it asks.',
    },
    { role: 'user', content: `The task:\n${task}\n\nThe question:\n${question}` },
  ];
}
