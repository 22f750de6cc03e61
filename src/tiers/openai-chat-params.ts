import { z } from 'zod';

/**
 * OpenAI's chat-completions parameters as zod schemas: the one source of the types every tier speaks
 * (TierRequest is these, validated) and of the HTTP request schema (src/server/api-schema.ts adds the
 * `model` and mechroute's own extension). Every object is strict: a field OpenAI does not define is an
 * error, never something forwarded unread. Free-form JSON (JSON Schemas, logit biases) is bounded in
 * depth, so no value reaching a provider can overflow the stack of whoever serialises it. The list
 * follows `ChatCompletionCreateParamsBase` of the `openai` SDK; test/unit/server/api-schema.test.ts
 * checks the two agree at compile time.
 */

/** Deeper JSON than this in a free-form field is refused (OpenAI allows 10 levels in strict schemas). */
export const MAX_JSON_DEPTH = 64;

/** Whether `value` nests objects or arrays deeper than `limit`; iterative, so any depth is safe to ask. */
export function jsonDeeperThan(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    if (depth > limit) return true;
    for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
  return false;
}

const JsonObjectSchema = z
  .record(z.string(), z.unknown())
  .refine((value) => !jsonDeeperThan(value, MAX_JSON_DEPTH), `nested deeper than ${MAX_JSON_DEPTH} levels`);

/** OpenAI's rule for function, tool and schema names. */
const NameSchema = z
  .string()
  .regex(/^[a-zA-Z0-9_-]{1,64}$/, 'must be 1 to 64 characters of a-z, A-Z, 0-9, _ and -');

const CacheBreakpointSchema = z.strictObject({ mode: z.literal('explicit') });

export const TextPartSchema = z.strictObject({
  type: z.literal('text'),
  text: z.string(),
  prompt_cache_breakpoint: CacheBreakpointSchema.optional(),
});
const ImagePartSchema = z.strictObject({
  type: z.literal('image_url'),
  image_url: z.strictObject({ url: z.string(), detail: z.enum(['auto', 'low', 'high']).optional() }),
  prompt_cache_breakpoint: CacheBreakpointSchema.optional(),
});
const AudioPartSchema = z.strictObject({
  type: z.literal('input_audio'),
  input_audio: z.strictObject({ data: z.string(), format: z.enum(['wav', 'mp3']) }),
  prompt_cache_breakpoint: CacheBreakpointSchema.optional(),
});
const FilePartSchema = z.strictObject({
  type: z.literal('file'),
  file: z.strictObject({
    file_data: z.string().optional(),
    file_id: z.string().optional(),
    filename: z.string().optional(),
  }),
  prompt_cache_breakpoint: CacheBreakpointSchema.optional(),
});
const RefusalPartSchema = z.strictObject({ type: z.literal('refusal'), refusal: z.string() });

const UserPartSchema = z.discriminatedUnion('type', [
  TextPartSchema,
  ImagePartSchema,
  AudioPartSchema,
  FilePartSchema,
]);
const AssistantPartSchema = z.discriminatedUnion('type', [TextPartSchema, RefusalPartSchema]);
const TextContentSchema = z.union([z.string(), z.array(TextPartSchema)]);

const FunctionToolCallSchema = z.strictObject({
  id: z.string(),
  type: z.literal('function'),
  function: z.strictObject({ name: z.string(), arguments: z.string() }),
});
const CustomToolCallSchema = z.strictObject({
  id: z.string(),
  type: z.literal('custom'),
  custom: z.strictObject({ name: z.string(), input: z.string() }),
});
export const ToolCallSchema = z.discriminatedUnion('type', [FunctionToolCallSchema, CustomToolCallSchema]);

export const ChatMessageSchema = z.discriminatedUnion('role', [
  z.strictObject({ role: z.literal('system'), content: TextContentSchema, name: z.string().optional() }),
  z.strictObject({ role: z.literal('developer'), content: TextContentSchema, name: z.string().optional() }),
  z.strictObject({
    role: z.literal('user'),
    content: z.union([z.string(), z.array(UserPartSchema)]),
    name: z.string().optional(),
  }),
  z.strictObject({
    role: z.literal('assistant'),
    // Absent and null mean the same (a turn that only calls tools); null keeps the type one shape.
    content: z
      .union([z.string(), z.array(AssistantPartSchema)])
      .nullable()
      .default(null),
    name: z.string().optional(),
    refusal: z.string().nullish(),
    tool_calls: z.array(ToolCallSchema).optional(),
    function_call: z.strictObject({ name: z.string(), arguments: z.string() }).nullish(),
    audio: z.strictObject({ id: z.string() }).nullish(),
  }),
  z.strictObject({ role: z.literal('tool'), content: TextContentSchema, tool_call_id: z.string() }),
  z.strictObject({ role: z.literal('function'), content: z.string().nullable(), name: z.string() }),
]);

const FunctionDefinitionSchema = z.strictObject({
  name: NameSchema,
  description: z.string().optional(),
  parameters: JsonObjectSchema.optional(),
  strict: z.boolean().nullish(),
});
const FunctionToolSchema = z.strictObject({
  type: z.literal('function'),
  function: FunctionDefinitionSchema,
});
const CustomToolSchema = z.strictObject({
  type: z.literal('custom'),
  custom: z.strictObject({
    name: NameSchema,
    description: z.string().optional(),
    format: z
      .discriminatedUnion('type', [
        z.strictObject({ type: z.literal('text') }),
        z.strictObject({
          type: z.literal('grammar'),
          grammar: z.strictObject({ definition: z.string(), syntax: z.enum(['lark', 'regex']) }),
        }),
      ])
      .optional(),
  }),
});
export const ToolSchema = z.discriminatedUnion('type', [FunctionToolSchema, CustomToolSchema]);

/** A tool named in `tool_choice` or `allowed_tools`. */
const ToolReferenceSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('function'), function: z.strictObject({ name: z.string() }) }),
  z.strictObject({ type: z.literal('custom'), custom: z.strictObject({ name: z.string() }) }),
]);
export const ToolChoiceSchema = z.union([
  z.enum(['none', 'auto', 'required']),
  ToolReferenceSchema,
  z.strictObject({
    type: z.literal('allowed_tools'),
    allowed_tools: z.strictObject({
      mode: z.enum(['auto', 'required']),
      tools: z.array(ToolReferenceSchema).min(1),
    }),
  }),
]);

export const ResponseFormatSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('text') }),
  z.strictObject({ type: z.literal('json_object') }),
  z.strictObject({
    type: z.literal('json_schema'),
    json_schema: z.strictObject({
      name: NameSchema,
      description: z.string().optional(),
      schema: JsonObjectSchema.optional(),
      strict: z.boolean().nullish(),
    }),
  }),
]);

const Penalty = z.number().min(-2).max(2);
const TokenLimit = z.number().int().positive();

/**
 * Every parameter of a chat completion but `model` (which names a tier or the router). Optional
 * fields accept null, as OpenAI's do: null means "the default", like leaving the field out.
 */
export const ChatParamsShape = {
  messages: z.array(ChatMessageSchema).min(1, 'messages must not be empty'),
  audio: z
    .strictObject({
      format: z.enum(['wav', 'aac', 'mp3', 'flac', 'opus', 'pcm16']),
      voice: z.union([z.string(), z.strictObject({ id: z.string() })]),
    })
    .nullish(),
  frequency_penalty: Penalty.nullish(),
  function_call: z.union([z.enum(['none', 'auto']), z.strictObject({ name: z.string() })]).optional(),
  functions: z
    .array(
      z.strictObject({
        name: NameSchema,
        description: z.string().optional(),
        parameters: JsonObjectSchema.optional(),
      }),
    )
    .min(1)
    .max(128)
    .optional(),
  logit_bias: z
    .record(z.string().regex(/^\d+$/, 'keys are token ids'), z.number().min(-100).max(100))
    .nullish(),
  logprobs: z.boolean().nullish(),
  max_completion_tokens: TokenLimit.nullish(),
  max_tokens: TokenLimit.nullish(),
  metadata: z
    .record(z.string().max(64), z.string().max(512))
    .refine((m) => Object.keys(m).length <= 16, 'at most 16 pairs')
    .nullish(),
  modalities: z.array(z.enum(['text', 'audio'])).nullish(),
  moderation: z
    .strictObject({
      model: z.string(),
      policy: z
        .strictObject({
          input: z.strictObject({ mode: z.enum(['score', 'block']) }).nullish(),
          output: z.strictObject({ mode: z.enum(['score', 'block']) }).nullish(),
        })
        .nullish(),
    })
    .nullish(),
  n: z.number().int().min(1).max(128).nullish(),
  parallel_tool_calls: z.boolean().optional(),
  prediction: z.strictObject({ type: z.literal('content'), content: TextContentSchema }).nullish(),
  presence_penalty: Penalty.nullish(),
  prompt_cache_key: z.string().nullish(),
  prompt_cache_options: z
    .strictObject({ mode: z.enum(['implicit', 'explicit']).optional(), ttl: z.literal('30m').optional() })
    .optional(),
  prompt_cache_retention: z.enum(['in_memory', '24h']).nullish(),
  reasoning_effort: z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max']).nullish(),
  response_format: ResponseFormatSchema.optional(),
  safety_identifier: z.string().max(64).nullish(),
  seed: z.number().int().nullish(),
  service_tier: z.enum(['auto', 'default', 'flex', 'scale', 'priority']).nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish(),
  store: z.boolean().nullish(),
  stream: z.boolean().nullish(),
  stream_options: z
    .strictObject({ include_obfuscation: z.boolean().optional(), include_usage: z.boolean().optional() })
    .nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  tool_choice: ToolChoiceSchema.optional(),
  tools: z.array(ToolSchema).max(128).optional(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  user: z.string().optional(),
  verbosity: z.enum(['low', 'medium', 'high']).nullish(),
  web_search_options: z
    .strictObject({
      search_context_size: z.enum(['low', 'medium', 'high']).optional(),
      user_location: z
        .strictObject({
          type: z.literal('approximate'),
          approximate: z.strictObject({
            city: z.string().optional(),
            country: z.string().optional(),
            region: z.string().optional(),
            timezone: z.string().optional(),
          }),
        })
        .nullish(),
    })
    .optional(),
};

const ChatParamsSchema = z.strictObject(ChatParamsShape);
/** The parameters as validated (nulls still in). */
export type ChatParams = z.output<typeof ChatParamsSchema>;

/**
 * The rules OpenAI enforces across fields, each reported at the field it concerns. Shared by the HTTP
 * schema and anything else that takes OpenAI requests (the loopback upstream of the tests).
 */
export function checkChatParams<T extends ChatParams>(params: T, ctx: z.RefinementCtx<T>): void {
  const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  if (
    params.max_tokens != null &&
    params.max_completion_tokens != null &&
    params.max_tokens !== params.max_completion_tokens
  ) {
    issue('max_completion_tokens', 'give max_completion_tokens or max_tokens, not two different limits');
  }
  if (params.top_logprobs != null && params.logprobs !== true) {
    issue('top_logprobs', '`logprobs` must be set to true when top_logprobs is used');
  }
  if (params.stream_options != null && params.stream !== true) {
    issue('stream_options', 'stream_options is only allowed when stream is true');
  }
  const tools = params.tools ?? [];
  if (params.tool_choice !== undefined && tools.length === 0) {
    issue('tool_choice', 'tool_choice is only allowed when tools are given');
  }
  if (params.parallel_tool_calls !== undefined && tools.length === 0) {
    issue('parallel_tool_calls', 'parallel_tool_calls is only allowed when tools are given');
  }
  const names = new Set(tools.map(toolName));
  if (names.size < tools.length) issue('tools', 'tool names must be unique');
  const choice = params.tool_choice;
  const named =
    choice === undefined || typeof choice === 'string'
      ? []
      : choice.type === 'allowed_tools'
        ? choice.allowed_tools.tools
        : [choice];
  for (const ref of named) {
    const name = ref.type === 'function' ? ref.function.name : ref.custom.name;
    if (tools.length > 0 && !names.has(name)) issue('tool_choice', `no tool named "${name}" is given`);
  }
  if (params.function_call !== undefined && typeof params.function_call !== 'string') {
    const name = params.function_call.name;
    if (!params.functions?.some((f) => f.name === name)) {
      issue('function_call', `no function named "${name}" is given`);
    }
  }
}

/** A web-search citation on an answer (`web_search_options`), as upstreams send it. */
export const AnnotationSchema = z.object({
  type: z.literal('url_citation'),
  url_citation: z.object({
    start_index: z.number().int(),
    end_index: z.number().int(),
    title: z.string(),
    url: z.string(),
  }),
});

/** Audio an answer carries (`modalities: ["audio"]`), as upstreams send it. */
export const AudioOutputSchema = z.object({
  id: z.string(),
  data: z.string(),
  expires_at: z.number(),
  transcript: z.string(),
});

export type Annotation = z.output<typeof AnnotationSchema>;
export type AudioOutput = z.output<typeof AudioOutputSchema>;
export type ChatMessage = z.output<typeof ChatMessageSchema>;
export type ToolSpec = z.output<typeof ToolSchema>;
export type FunctionTool = z.output<typeof FunctionToolSchema>;
export type ToolCall = z.output<typeof ToolCallSchema>;
export type FunctionToolCall = z.output<typeof FunctionToolCallSchema>;
export type ToolChoice = z.output<typeof ToolChoiceSchema>;
export type ResponseFormat = z.output<typeof ResponseFormatSchema>;

export const toolName = (tool: ToolSpec): string =>
  tool.type === 'function' ? tool.function.name : tool.custom.name;
