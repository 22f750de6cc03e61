import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { bearerToken } from '../../../src/server/access.js';
import type { RouterServices } from '../../../src/server/services.js';
import { buildTestApp } from '../../support/test-app.js';

/**
 * Access control holds on the route fastify matched, not on how the URL was spelled: percent-encoded
 * paths and absolute-form request targets once reached /v1 and /admin without a token (issue 16, #1).
 * The app runs on a stand-in encoder: none of this is about activations.
 */
const env = { ACCESS_TEST_TOKENS: 'token-one,token-two' };
const appWith = (server: Record<string, unknown>, dir: string) => buildTestApp(dir, { server, env });

/** Sends one raw HTTP/1.1 request line (absolute-form targets need a raw socket) and returns the status. */
function rawStatus(port: number, requestLine: string, headers: string[] = []): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(
        `${requestLine}\r\nHost: 127.0.0.1:${port}\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`,
      );
    });
    let data = '';
    socket.on('data', (chunk) => {
      data += chunk.toString();
    });
    socket.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
    socket.on('error', reject);
  });
}

describe('access control on matched routes', () => {
  let dir: string;
  let app: FastifyInstance;
  let services: RouterServices;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mechroute-access-'));
    ({ app, services } = await appWith({ auth_tokens_env: 'ACCESS_TEST_TOKENS' }, dir));
  });
  after(async () => {
    await app?.close();
    await services?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const spellings = [
    ['GET', '/v1/stats'],
    ['GET', '/%761/stats'],
    ['GET', '/v1/%73tats'],
    ['GET', '/%76%31/stats'],
    ['GET', '/v1/models'],
    ['GET', '/%761/models/mechroute'],
    ['POST', '/%761/chat/completions'],
    ['POST', '/%761/route'],
    ['POST', '/%761/feedback'],
    ['GET', '/admin/policy'],
    ['GET', '/%61dmin/policy'],
    ['POST', '/%61dmin/policy/rollback'],
  ] as const;

  it('refuses every API and admin route without a token, however the path is encoded', async () => {
    for (const [method, url] of spellings) {
      const response = await app.inject({
        method,
        url,
        ...(method === 'POST'
          ? { payload: { model: 'mechroute', messages: [{ role: 'user', content: 'hi' }] } }
          : {}),
      });
      assert.equal(response.statusCode, 401, `${method} ${url} → ${response.statusCode}`);
      assert.equal(response.json().error.code, 'MR_ERR_UNAUTHORIZED');
    }
  });

  it('refuses absolute-form request targets without a token, over a real socket', async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    for (const target of ['/v1/stats', '/%761/stats', '/admin/policy']) {
      const status = await rawStatus(port, `GET http://127.0.0.1:${port}${target} HTTP/1.1`);
      assert.equal(status, 401, `absolute-form ${target} → ${status}`);
    }
    assert.equal(
      await rawStatus(port, `GET http://127.0.0.1:${port}/v1/stats HTTP/1.1`, [
        'Authorization: Bearer token-one',
      ]),
      200,
    );
  });

  it('accepts the bearer scheme in any case, and health checks stay public', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const response = await app.inject({
        url: '/v1/stats',
        headers: { authorization: `${scheme} token-two` },
      });
      assert.equal(response.statusCode, 200, scheme);
    }
    assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200);
    assert.equal((await app.inject({ url: '/metrics' })).statusCode, 200);
  });

  it('throttles a client that keeps failing authentication', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 22; i++) {
      const response = await app.inject({
        url: '/%761/stats',
        headers: { authorization: `Bearer guess-${i}` },
        remoteAddress: '10.9.9.9',
      });
      statuses.push(response.statusCode);
    }
    assert.deepEqual(statuses.slice(0, 20), Array(20).fill(401));
    assert.deepEqual(statuses.slice(20), [429, 429]);
    const throttled = await app.inject({
      url: '/v1/stats',
      headers: { authorization: 'Bearer token-one' },
      remoteAddress: '10.9.9.9',
    });
    assert.equal(throttled.statusCode, 429);
    assert.equal(throttled.json().error.code, 'MR_ERR_AUTH_THROTTLED');
    assert.ok(Number(throttled.headers['retry-after']) >= 1);
    // Another address is not affected.
    const other = await app.inject({ url: '/v1/stats', headers: { authorization: 'Bearer token-one' } });
    assert.equal(other.statusCode, 200);
  });

  it('checks the token and takes bearer tokens only from the Authorization header', () => {
    assert.equal(bearerToken('Bearer abc'), 'abc');
    assert.equal(bearerToken('bearer   abc  '), 'abc');
    assert.equal(bearerToken('Basic abc'), undefined);
    assert.equal(bearerToken('Bearer a b'), undefined);
    assert.equal(bearerToken(undefined), undefined);
  });
});

describe('rate limit and the admin rule without tokens', () => {
  let dir: string;
  let app: FastifyInstance;
  let services: RouterServices;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mechroute-access-'));
    ({ app, services } = await appWith({ rate_limit: { requests: 3, window_s: 60 } }, dir));
  });
  after(async () => {
    await app?.close();
    await services?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('counts encoded spellings of a route against the same limit', async () => {
    const statuses: number[] = [];
    for (const url of ['/v1/models', '/%761/models', '/v1/%6dodels', '/%761/models', '/v1/stats']) {
      statuses.push((await app.inject({ url, remoteAddress: '10.1.1.1' })).statusCode);
    }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    const limited = await app.inject({ url: '/v1/models', remoteAddress: '10.1.1.1' });
    assert.equal(limited.json().error.code, 'MR_ERR_RATE_LIMITED');
    assert.ok(Number(limited.headers['retry-after']) >= 1);
    assert.equal(limited.headers['x-should-retry'], 'true');
    assert.equal((await app.inject({ url: '/healthz', remoteAddress: '10.1.1.1' })).statusCode, 200);
  });

  it('keeps the admin routes to loopback clients, however the path is encoded', async () => {
    for (const url of ['/admin/policy', '/%61dmin/policy', '/admin/%70olicy']) {
      const remote = await app.inject({ url, remoteAddress: '10.2.2.2' });
      assert.equal(remote.statusCode, 403, url);
      assert.equal(remote.json().error.code, 'MR_ERR_FORBIDDEN');
    }
    assert.equal((await app.inject({ url: '/%61dmin/policy', remoteAddress: '127.0.0.1' })).statusCode, 200);
  });

  it('answers an unknown route with a 404 in the OpenAI error shape', async () => {
    const response = await app.inject({ url: `/v2/${'x'.repeat(5000)}` });
    assert.equal(response.statusCode, 404);
    const body = response.json();
    assert.equal(body.error.code, 'MR_ERR_NOT_FOUND');
    assert.ok(body.error.message.length < 400, 'the URL is not echoed unbounded');
  });
});
