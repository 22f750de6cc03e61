import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { RouterServices } from '../../../src/server/services.js';
import { rawExchange } from '../../support/raw-http.js';
import { buildTestApp } from '../../support/test-app.js';

/**
 * What Node's HTTP server answers by itself, before fastify sees a request, found by the reliability
 * fuzzer (issue 16): every such answer must be in the OpenAI error shape, and a client that stalls
 * mid-body must be cut off at server.receive_timeout_ms, not at Node's 60 s headers timeout.
 */
describe('answers from below the router', () => {
  let dir: string;
  let app: FastifyInstance;
  let services: RouterServices;
  let port: number;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mechroute-wire-'));
    ({ app, services } = await buildTestApp(dir, { server: { receive_timeout_ms: 1_000 } }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as { port: number }).port;
  });
  after(async () => {
    await app?.close();
    await services?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const send = (request: string, timeoutMs = 10_000) =>
    rawExchange([{ bytes: Buffer.from(request, 'latin1') }], { port, timeoutMs });
  const errorOf = (body: Buffer) => (JSON.parse(body.toString()) as { error: Record<string, unknown> }).error;

  it('cuts off a body that stops arriving at the receive timeout, with a 408', {
    timeout: 30_000,
  }, async () => {
    const stalled = [
      'POST /v1/route HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"prompt":',
      'POST /v1/route HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n',
      'POST /v1/route HTTP/1.1\r\nHost: x\r\nX-Still-Sending: 1\r\n',
    ];
    for (const request of stalled) {
      // Node's own limit (headersTimeout, 60 s) would answer only after this wait gives up.
      const result = await send(request, 20_000);
      assert.equal(result.outcome, 'answered', request);
      assert.equal(result.status, 408, request);
      assert.equal(errorOf(result.body).code, 'MR_ERR_BAD_REQUEST');
    }
  });

  it('answers an HTTP/1.1 request without Host with a 400 in the OpenAI shape', async () => {
    const result = await send('GET /v1/models HTTP/1.1\r\nConnection: close\r\n\r\n');
    assert.equal(result.status, 400);
    assert.equal(errorOf(result.body).code, 'MR_ERR_BAD_REQUEST');
    // HTTP/1.0 has no Host requirement.
    assert.equal((await send('GET /healthz HTTP/1.0\r\n\r\n')).status, 200);
  });

  it('answers an expectation it cannot meet with a 417 in the OpenAI shape', async () => {
    const result = await send(
      'POST /v1/route HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}',
    );
    assert.equal(result.status, 417);
    assert.equal(errorOf(result.body).code, 'MR_ERR_BAD_REQUEST');
  });

  it('answers CONNECT with a 405 instead of dropping the connection', async () => {
    const result = await send(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    assert.equal(result.outcome, 'answered');
    assert.equal(result.status, 405);
    assert.equal(errorOf(result.body).code, 'MR_ERR_METHOD_NOT_ALLOWED');
  });
});
