import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';

/**
 * A minimal OpenAI-compatible upstream on 127.0.0.1 that needs no model: it answers every call with a
 * fixed text (as JSON, or as SSE when the request streams), records the headers it got, and fails the
 * calls whose number (1-based) is in `failCalls` with a 503. `answer` picks the text per request, and
 * `delayMs` holds each answer back that long (a run slow enough to be killed mid-way). For HTTP tests of what surrounds a tier
 * call (tracing, metrics, headers); the real-model upstream is test/support/openai-upstream.ts.
 */
export interface ScriptedUpstream {
  url: string;
  headers: IncomingHttpHeaders[];
  close(): Promise<void>;
}

export function startScriptedUpstream(
  options: {
    text?: string;
    failCalls?: number[];
    answer?: (body: { messages: Array<{ content: string }> }) => string;
    delayMs?: number;
  } = {},
): Promise<ScriptedUpstream> {
  const headers: IncomingHttpHeaders[] = [];
  const usage = { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 };
  const server: Server = createServer((req, res) => {
    headers.push(req.headers);
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    const call = headers.length;
    req.on('end', async () => {
      if (options.delayMs) await new Promise((done) => setTimeout(done, options.delayMs));
      if (options.failCalls?.includes(call)) {
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"message":"busy"}}');
        return;
      }
      const base = { id: 'x', created: 0, model: 'm' };
      const request = JSON.parse(body);
      const text = options.answer?.(request) ?? options.text ?? 'hi';
      if (request.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const chunk = (delta: object, finish: string | null, extra: object = {}) =>
          `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`;
        res.write(chunk({ role: 'assistant', content: '' }, null));
        res.write(chunk({ content: text }, null));
        res.write(chunk({}, 'stop'));
        res.write(
          `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [], usage })}\n\n`,
        );
        res.end('data: [DONE]\n\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          ...base,
          object: 'chat.completion',
          choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
          usage,
        }),
      );
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      resolve({
        url: `http://127.0.0.1:${port}/v1`,
        headers,
        close: () => new Promise((done) => server.close(() => done())),
      });
    }),
  );
}
