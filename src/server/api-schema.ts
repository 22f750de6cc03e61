import { z } from 'zod';
import { ApiError } from '../errors.js';
import { ChatMessageSchema, ChatParamsShape, checkChatParams } from '../tiers/openai-chat-params.js';
import { formatIssues } from '../zod-issues.js';

/**
 * The HTTP API's request shapes: one source of truth for validation and handler types. Chat requests
 * take OpenAI's parameters, every one typed (src/tiers/openai-chat-params.ts), and nothing else but
 * mechroute's own `mechroute` object: an unknown field is a 400, as OpenAI answers it, never something
 * passed on unread.
 */
export const ChatCompletionRequestSchema = z
  .strictObject({
    model: z.string().min(1, 'model is required: "mechroute" routes, a tier id bypasses routing'),
    ...ChatParamsShape,
    /** mechroute's extension: per-request policy overrides (see `parseOverrides`). */
    mechroute: z.record(z.string(), z.unknown()).optional(),
  })
  .superRefine(checkChatParams);
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequestSchema>;

/**
 * A chat request body, validated; a 400 otherwise. Unknown top-level fields get OpenAI's own message
 * (`Unrecognized request argument supplied: foo`), so clients and their tests read it as they would
 * OpenAI's; every other problem is listed by path.
 */
export function parseChatCompletionRequest(body: unknown): ChatCompletionRequest {
  const parsed = ChatCompletionRequestSchema.safeParse(body);
  if (parsed.success) return parsed.data;
  const unknown = parsed.error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys' && issue.path.length === 0 ? issue.keys : [],
  );
  if (unknown.length > 0) {
    const plural = unknown.length > 1 ? 's' : '';
    throw new ApiError(
      'MR_ERR_BAD_REQUEST',
      `Unrecognized request argument${plural} supplied: ${unknown.join(', ')}`,
    );
  }
  throw new ApiError(
    'MR_ERR_BAD_REQUEST',
    `invalid chat completion request:\n${formatIssues(parsed.error.issues)}`,
  );
}

/** `/v1/route` takes the same prompt forms as chat: messages, or a bare prompt string. */
export const RouteRequestSchema = z
  .looseObject({
    prompt: z.string().optional(),
    messages: z.array(ChatMessageSchema).min(1).optional(),
    max_tokens: z.number().int().positive().optional(),
    mechroute: z.record(z.string(), z.unknown()).optional(),
  })
  .refine((r) => (r.prompt === undefined) !== (r.messages === undefined), {
    message: 'give exactly one of prompt or messages',
  });
export type RouteRequestBody = z.infer<typeof RouteRequestSchema>;

export const FeedbackRequestSchema = z.strictObject({
  request_id: z.string().min(1).max(200),
  success: z.boolean(),
});

/** The model name that asks for routing (any other names a tier). */
export { MODEL_ROUTER } from '../router/mode-plans.js';
