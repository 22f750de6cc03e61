/**
 * One HTTP call to a running server, as the end-to-end tests make them: a JSON body when given, the
 * answer parsed as JSON when it is JSON (else its text, e.g. `/metrics`).
 */
// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
export type Json = any;

export async function callServer(
  server: { url: string },
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; headers: Headers; body: Json }> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await response.text();
  const json = (response.headers.get('content-type') ?? '').includes('json');
  return { status: response.status, headers: response.headers, body: json ? JSON.parse(text) : text };
}
