import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';

/**
 * One chat request setting every parameter of the `openai` SDK's ChatCompletionCreateParams (typed by
 * the SDK, so it is a request the official client can send), with values consistent with each other.
 * The schema tests parse it; the wire tests send it through mechroute and compare what the upstream
 * received. `stream` and `stream_options` are the streaming tests' own.
 */
export const EVERY_PARAMETER = {
  model: 'gpt-4-1106-preview',
  messages: [
    { role: 'developer', content: 'Be brief.', name: 'ops' },
    { role: 'system', content: [{ type: 'text', text: 'You are helpful.' }] },
    {
      role: 'user',
      name: 'ann',
      content: [
        { type: 'text', text: 'What is in this picture, and the weather in Paris?' },
        { type: 'image_url', image_url: { url: 'https://example.com/cat.png', detail: 'low' } },
        { type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } },
        { type: 'file', file: { file_id: 'file-1', filename: 'notes.txt' } },
      ],
    },
    {
      role: 'assistant',
      content: null,
      refusal: null,
      tool_calls: [
        { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
      ],
    },
    { role: 'tool', tool_call_id: 'call_1', content: '18 C and sunny' },
    { role: 'assistant', content: [{ type: 'text', text: 'It is 18 C.' }], function_call: null, audio: null },
    { role: 'function', name: 'get_weather', content: '{"temp":18}' },
    { role: 'user', content: 'Thanks. And tomorrow?' },
  ],
  audio: { format: 'mp3', voice: 'alloy' },
  frequency_penalty: 0.5,
  function_call: { name: 'get_forecast' },
  functions: [
    { name: 'get_forecast', description: 'Forecast', parameters: { type: 'object', properties: {} } },
  ],
  logit_bias: { '1000': -100, '42': 5 },
  logprobs: true,
  max_completion_tokens: 64,
  metadata: { team: 'wire' },
  modalities: ['text', 'audio'],
  moderation: { model: 'omni-moderation-latest', policy: { input: { mode: 'score' }, output: null } },
  n: 2,
  parallel_tool_calls: false,
  prediction: { type: 'content', content: 'It will be sunny.' },
  presence_penalty: -0.5,
  prompt_cache_key: 'weather-bot',
  prompt_cache_options: { mode: 'implicit', ttl: '30m' },
  prompt_cache_retention: '24h',
  reasoning_effort: 'low',
  response_format: {
    type: 'json_schema',
    json_schema: {
      name: 'forecast',
      description: 'A forecast',
      schema: { type: 'object', properties: { temp: { type: 'number' } }, required: ['temp'] },
      strict: true,
    },
  },
  safety_identifier: 'user-hash-1',
  seed: 7,
  service_tier: 'flex',
  stop: ['\n\n', 'END'],
  store: false,
  temperature: 0.3,
  tool_choice: {
    type: 'allowed_tools',
    allowed_tools: { mode: 'auto', tools: [{ type: 'function', function: { name: 'get_weather' } }] },
  },
  tools: [
    {
      type: 'function',
      function: {
        name: 'get_weather',
        description: 'Weather in a city',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        strict: false,
      },
    },
    {
      type: 'custom',
      custom: {
        name: 'sql',
        description: 'A query',
        format: { type: 'grammar', grammar: { definition: 'start: "SELECT"', syntax: 'lark' } },
      },
    },
  ],
  top_logprobs: 2,
  top_p: 0.9,
  user: 'user-1',
  verbosity: 'low',
  web_search_options: {
    search_context_size: 'low',
    user_location: { type: 'approximate', approximate: { city: 'Paris', country: 'FR' } },
  },
} satisfies ChatCompletionCreateParamsNonStreaming;
