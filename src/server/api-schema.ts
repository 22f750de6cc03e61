import { z } from 'zod';

/**
 * The HTTP API's request shapes: one source of truth for validation and handler types. Unknown fields
 * are kept (OpenAI clients send fields we do not act on, like `n` or `user`); known ones are checked.
 */
const ContentPartSchema = z.looseObject({ type: z.string(), text: z.string().optional() });

export const ChatMessageSchema = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(ContentPartSchema), z.null()]),
  name: z.string().optional(),
});

export const ChatCompletionRequestSchema = z.looseObject({
  model: z.string().min(1, 'model is required: "mechroute" routes, a tier id bypasses routing'),
  messages: z.array(ChatMessageSchema).min(1, 'messages must not be empty'),
  stream: z.boolean().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish(),
  seed: z.number().int().nullish(),
  logprobs: z.boolean().nullish(),
  /** mechroute's extension: per-request policy overrides (see `parseOverrides`). */
  mechroute: z.record(z.string(), z.unknown()).optional(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequestSchema>;

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
