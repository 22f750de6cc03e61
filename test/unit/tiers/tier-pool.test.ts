import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TierConfigSchema } from '../../../src/config/config-schema.js';
import {
  canFailOver,
  type TierError,
  TierExhaustedError,
  type TierModel,
  TierUnavailableError,
  UpstreamAbortedError,
  UpstreamStatusError,
  UpstreamTruncatedError,
} from '../../../src/tiers/tier-model.js';
import { createTierPool, type TierPoolDeps } from '../../../src/tiers/tier-pool.js';
import {
  chunk,
  collect,
  completion,
  fakeClock,
  goodStream,
  jsonResponse,
  request,
  sseResponse,
  textOf,
} from './wire-fixtures.js';

type Behaviour = (init: RequestInit) => Response | Promise<Response>;

/** A fetch double per deployment host: scripted answers first, then the default. */
function upstreams(defaults: Record<string, Behaviour>) {
  const scripted = new Map<string, Behaviour[]>();
  const calls: string[] = [];
  const fetch: typeof globalThis.fetch = async (input, init = {}) => {
    const host = new URL(String(input)).host;
    calls.push(host);
    const next = scripted.get(host)?.shift() ?? defaults[host];
    if (!next)
      throw new TypeError('fetch failed', {
        cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      });
    return next(init);
  };
  return {
    fetch,
    calls,
    script(host: string, ...behaviours: Behaviour[]) {
      scripted.set(host, [...(scripted.get(host) ?? []), ...behaviours]);
    },
  };
}

const ok: Behaviour = (init) =>
  JSON.parse(String(init.body)).stream ? sseResponse([goodStream]) : jsonResponse(completion('Hello world'));
const status =
  (code: number, headers: Record<string, string> = {}): Behaviour =>
  () =>
    jsonResponse({ error: { message: `status ${code}` } }, code, headers);

const tier = (overrides: Record<string, unknown> = {}) =>
  TierConfigSchema.parse({
    id: 'frontier',
    provider: 'openai',
    model: 'gpt-x',
    price: { input_per_mtok: 1, output_per_mtok: 2 },
    context_window: 8192,
    deployments: [
      { base_url: 'http://d0.test/v1', api_key_env: 'KEY_A' },
      { base_url: 'http://d1.test/v1', api_key_env: 'KEY_B' },
    ],
    cooldown: { failures: 3, seconds: 30 },
    max_retries: 2,
    ...overrides,
  });

function setup(
  defaults: Record<string, Behaviour>,
  env: Record<string, string> = { KEY_A: 'sk-a', KEY_B: 'sk-b' },
) {
  const u = upstreams(defaults);
  const clock = fakeClock();
  const deps: TierPoolDeps = { fetch: u.fetch, env, clock, random: () => 0.5 };
  return { u, clock, deps };
}

describe('tier pool: retries and backoff', () => {
  test('retries a 5xx with exponential backoff, then succeeds on the same deployment', async () => {
    const { u, clock, deps } = setup({ 'd0.test': ok });
    u.script('d0.test', status(500), status(503));
    const pool = await createTierPool([tier()], deps);
    const result = await pool.generate('frontier', request);
    assert.equal(result.text, 'Hello world');
    assert.equal(result.deployment, 'frontier/0');
    assert.deepEqual(u.calls, ['d0.test', 'd0.test', 'd0.test']);
    // equal jitter at random 0.5: 3/4 of 250 ms, then of 500 ms
    assert.deepEqual(clock.sleeps, [187.5, 375]);
  });

  test('a 429 waits at least its retry-after', async () => {
    const { u, clock, deps } = setup({ 'd0.test': ok });
    u.script('d0.test', status(429, { 'retry-after': '2' }));
    const pool = await createTierPool([tier()], deps);
    await pool.generate('frontier', request);
    assert.deepEqual(clock.sleeps, [2000]);
  });

  test('a retry-after too long to wait parks the deployment and fails over at once', async () => {
    const { u, clock, deps } = setup({ 'd0.test': ok, 'd1.test': ok });
    u.script('d0.test', status(429, { 'retry-after': '120' }));
    const pool = await createTierPool([tier()], deps);
    const result = await pool.generate('frontier', request);
    assert.equal(result.deployment, 'frontier/1');
    assert.deepEqual(clock.sleeps, []);
    await pool.generate('frontier', request);
    assert.deepEqual(u.calls, ['d0.test', 'd1.test', 'd1.test'], 'the parked deployment is skipped');
    clock.advance(120_000);
    await pool.generate('frontier', request);
    assert.equal(u.calls.at(-1), 'd0.test', 'and probed again once the wait is over');
  });

  test('a 400 is the request’s fault: no retry, no failover, no breaker count', async () => {
    const { u, deps } = setup({ 'd0.test': status(400), 'd1.test': ok });
    const pool = await createTierPool([tier()], deps);
    await assert.rejects(
      pool.generate('frontier', request),
      (e) => e instanceof UpstreamStatusError && e.status === 400,
    );
    assert.deepEqual(u.calls, ['d0.test']);
    assert.equal(pool.deployments('frontier')[0]!.consecutive_failures, 0);
  });

  test('a 401 is the deployment’s fault: no retry, straight to the next deployment', async () => {
    const { u, deps } = setup({ 'd0.test': status(401), 'd1.test': ok });
    const pool = await createTierPool([tier()], deps);
    assert.equal((await pool.generate('frontier', request)).deployment, 'frontier/1');
    assert.deepEqual(u.calls, ['d0.test', 'd1.test']);
  });

  test('when every deployment fails, one error lists every attempt', async () => {
    const { u, deps } = setup({ 'd0.test': status(500), 'd1.test': status(502) });
    const pool = await createTierPool(
      [tier({ max_retries: 1, cooldown: { failures: 5, seconds: 30 } })],
      deps,
    );
    await assert.rejects(pool.generate('frontier', request), (e) => {
      assert.ok(e instanceof TierExhaustedError);
      assert.equal(e.attempts.length, 4);
      assert.equal(e.isRetryable, true);
      return true;
    });
    assert.equal(u.calls.length, 4);
  });

  test('an aborted call stops at once and does not count against the deployment', async () => {
    const { deps } = setup({ 'd0.test': status(500) });
    const pool = await createTierPool([tier()], deps);
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(
      pool.generate('frontier', request, { signal: controller.signal }),
      UpstreamAbortedError,
    );
    assert.equal(pool.deployments('frontier')[0]!.consecutive_failures, 0);
  });
});

describe('tier pool: circuit breaker and availability', () => {
  test('open after N failures → skipped → half-open probe after the cooldown → closed again', async () => {
    const { u, clock, deps } = setup({ 'd0.test': status(500), 'd1.test': ok });
    const pool = await createTierPool([tier()], deps);
    assert.equal((await pool.generate('frontier', request)).deployment, 'frontier/1');
    assert.equal(pool.deployments('frontier')[0]!.state, 'open');
    assert.equal(u.calls.filter((h) => h === 'd0.test').length, 3);

    u.calls.length = 0;
    await pool.generate('frontier', request);
    assert.deepEqual(u.calls, ['d1.test'], 'cooling down: not even tried');

    clock.advance(30_000);
    assert.equal(pool.deployments('frontier')[0]!.state, 'half-open');
    u.script('d0.test', ok);
    u.calls.length = 0;
    assert.equal((await pool.generate('frontier', request)).deployment, 'frontier/0', 'the probe succeeds');
    assert.equal(pool.deployments('frontier')[0]!.state, 'closed');
  });

  test('every deployment cooling down: unavailable with a retry_after, then available again', async () => {
    const { clock, deps } = setup({ 'd0.test': status(500), 'd1.test': status(500) });
    const pool = await createTierPool(
      [tier({ max_retries: 0, cooldown: { failures: 1, seconds: 10 } })],
      deps,
    );
    await assert.rejects(pool.generate('frontier', request), TierExhaustedError);
    const a = pool.availability().frontier!;
    assert.equal(a.available, false);
    assert.match(a.reason, /cooling down/);
    assert.equal(a.retry_after_ms, 10_000);
    await assert.rejects(
      pool.generate('frontier', request),
      (e) => e instanceof TierUnavailableError && e.retryAfterMs === 10_000,
    );
    clock.advance(10_000);
    assert.equal(pool.availability().frontier!.available, true);
  });

  test('a remote tier with no key in the environment is unavailable, naming the variables only', async () => {
    const { u, deps } = setup({ 'd0.test': ok }, {});
    const pool = await createTierPool([tier()], deps);
    const a = pool.availability().frontier!;
    assert.equal(a.available, false);
    assert.match(a.reason, /KEY_A or KEY_B/);
    await assert.rejects(pool.generate('frontier', request), TierUnavailableError);
    assert.deepEqual(u.calls, []);
  });

  test('the key goes in the Authorization header and nowhere in errors', async () => {
    let auth: string | null = null;
    const { deps } = setup({
      'd0.test': (init) => {
        auth = new Headers(init.headers).get('authorization');
        return jsonResponse({ error: { message: 'Incorrect API key provided: sk-a' } }, 401);
      },
      'd1.test': status(401),
    });
    const pool = await createTierPool([tier()], deps);
    await assert.rejects(pool.generate('frontier', request), (e: Error) => {
      const detail = (e as { detail?: string }).detail ?? '';
      assert.ok(!e.message.includes('sk-a') && !detail.includes('sk-a'), e.message);
      assert.match(detail, /\[redacted\]/);
      return true;
    });
    assert.equal(auth, 'Bearer sk-a');
  });
});

describe('tier pool: streaming failover', () => {
  test('a failure before the first delta fails over invisibly: one start, from the deployment that answered', async () => {
    const { deps } = setup({ 'd0.test': status(500), 'd1.test': ok });
    const pool = await createTierPool([tier({ max_retries: 0 })], deps);
    const parts = await collect(pool.stream('frontier', request));
    assert.deepEqual(
      parts.map((p) => p.type),
      ['start', 'text-delta', 'text-delta', 'finish'],
    );
    assert.equal(parts[0]!.type === 'start' && parts[0]!.deployment, 'frontier/1');
    assert.equal(textOf(parts), 'Hello world');
  });

  test('a stream that ends before its first delta is retried', async () => {
    const { u, deps } = setup({ 'd0.test': ok });
    u.script('d0.test', () => sseResponse([`data: ${chunk('')}\n\n`]));
    const pool = await createTierPool([tier()], deps);
    const parts = await collect(pool.stream('frontier', request));
    assert.equal(parts.at(-1)!.type, 'finish');
    assert.deepEqual(u.calls, ['d0.test', 'd0.test']);
  });

  test('a drop after a delta ends the stream with an error part, without failing over', async () => {
    const { u, deps } = setup({
      'd0.test': () => sseResponse([`data: ${chunk('Hel')}\n\n`], { thenError: new TypeError('terminated') }),
      'd1.test': ok,
    });
    const pool = await createTierPool([tier()], deps);
    const parts = await collect(pool.stream('frontier', request));
    assert.deepEqual(
      parts.map((p) => p.type),
      ['start', 'text-delta', 'error'],
    );
    assert.equal(textOf(parts), 'Hel');
    assert.deepEqual(u.calls, ['d0.test']);
    assert.equal(
      pool.deployments('frontier')[0]!.consecutive_failures,
      1,
      'it still counts against the deployment',
    );
  });

  test('a truncated stream after deltas is an error, not a short answer', async () => {
    const { deps } = setup({ 'd0.test': () => sseResponse([`data: ${chunk('Hel')}\n\n`]) });
    const pool = await createTierPool([tier()], deps);
    const parts = await collect(pool.stream('frontier', request));
    const last = parts.at(-1)!;
    assert.ok(last.type === 'error' && last.error instanceof UpstreamTruncatedError);
  });

  test('every deployment failing before output: a single error part and no start', async () => {
    const { deps } = setup({ 'd0.test': status(500), 'd1.test': status(500) });
    const pool = await createTierPool([tier({ max_retries: 0 })], deps);
    const parts = await collect(pool.stream('frontier', request));
    assert.deepEqual(
      parts.map((p) => p.type),
      ['error'],
    );
  });

  test('a consumer that stops reading cancels the upstream body', async () => {
    let cancelled = false;
    const { deps } = setup({
      'd0.test': () =>
        new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(new TextEncoder().encode(`data: ${chunk('a')}\n\n`));
            },
            cancel() {
              cancelled = true;
            },
          }),
          { headers: { 'content-type': 'text/event-stream' } },
        ),
    });
    const pool = await createTierPool([tier()], deps);
    for await (const part of pool.stream('frontier', request)) if (part.type === 'text-delta') break;
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(cancelled, true);
  });
});

describe('tier pool: a request that cannot be serialized', () => {
  /** A value nested far deeper than JSON.stringify's stack allows (the poison request of issue 16). */
  function deeplyNested(depth: number): unknown {
    let value: unknown = [];
    for (let i = 0; i < depth; i++) value = [value];
    return value;
  }

  test('is refused as the request’s fault: no upstream call, no retry, no breaker trip', async () => {
    const { u, deps } = setup({ 'd0.test': ok, 'd1.test': ok });
    const pool = await createTierPool([tier()], deps);
    const poisoned = {
      ...request,
      messages: [{ role: 'user' as const, content: 'hi', extra: deeplyNested(200_000) }],
    } as unknown as typeof request;
    for (let i = 0; i < 5; i++) {
      await assert.rejects(pool.generate('frontier', poisoned), (e: TierError) => {
        assert.equal(e.code, 'MR_ERR_UPSTREAM_REQUEST');
        assert.equal(e.isRetryable, false);
        assert.equal(canFailOver(e), false);
        return true;
      });
      const parts = await collect(pool.stream('frontier', poisoned));
      const last = parts.at(-1)!;
      assert.ok(last.type === 'error' && last.error.code === 'MR_ERR_UPSTREAM_REQUEST');
    }
    assert.deepEqual(u.calls, [], 'nothing was sent upstream');
    assert.equal(pool.availability().frontier?.available, true);
    assert.ok(
      pool.deployments('frontier').every((d) => d.state === 'closed' && d.consecutive_failures === 0),
    );
    assert.equal((await pool.generate('frontier', request)).text, 'Hello world');
  });
});

describe('tier pool: a reload changes the tiers', () => {
  test('adds a tier, drains a removed one until its call ends, keeps an unchanged one', async () => {
    let release: (() => void) | undefined;
    const held = new Promise<void>((done) => {
      release = done;
    });
    const disposed: string[] = [];
    const local = (id: string): TierModel & { dispose(): Promise<void> } => ({
      specificationVersion: 'v1',
      id,
      provider: 'local',
      generate: async () => {
        await held;
        return {
          text: `from ${id}`,
          finish_reason: 'stop',
          usage: { input_tokens: 1, output_tokens: 1 },
          warnings: [],
          tier: id,
          deployment: id,
        };
      },
      stream: async function* () {},
      dispose: async () => {
        disposed.push(id);
      },
    });
    const localTier = (id: string) =>
      TierConfigSchema.parse({ id, provider: 'local', model: `${id}.gguf`, context_window: 512 });
    const { deps } = setup({ 'd0.test': ok });
    const pool = await createTierPool([localTier('old'), tier()], {
      ...deps,
      createLocalModel: async (t) => local(t.id),
    });
    const running = pool.generate('old', request);
    const change = await pool.prepare([tier(), localTier('new')]);
    assert.deepEqual([change.added, change.removed, change.replaced], [['new'], ['old'], []]);
    assert.deepEqual(pool.ids, ['old', 'frontier'], 'nothing changes before commit');
    change.commit();
    assert.deepEqual(pool.ids, ['frontier', 'new']);
    assert.deepEqual(pool.draining(), [{ id: 'old', in_flight: 1 }]);
    await assert.rejects(pool.generate('old', request), { code: 'MR_ERR_UPSTREAM_UNKNOWN_TIER' });
    assert.deepEqual(disposed, [], 'a draining tier is not disposed under its call');
    release!();
    assert.equal((await running).text, 'from old');
    assert.deepEqual(pool.draining(), []);
    assert.deepEqual(disposed, ['old']);
    assert.equal((await pool.generate('new', request)).text, 'from new');
    assert.equal((await pool.generate('frontier', request)).text, 'Hello world');
    // A change never committed releases what it built.
    const dropped = await pool.prepare([tier(), localTier('new'), localTier('spare')]);
    await dropped.discard();
    assert.deepEqual(disposed, ['old', 'spare']);
    assert.deepEqual(pool.ids, ['frontier', 'new']);
    await pool.close();
    assert.deepEqual(disposed.sort(), ['new', 'old', 'spare']);
  });
});
