import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { startServer } from '../../src/server/server.js';

it('limits requests per key per window with 429 and retry-after, and keeps health checks open', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mechroute-ratelimit-'));
  const config = join(dir, 'config.json');
  await writeFile(
    config,
    JSON.stringify({
      server: { host: '127.0.0.1', port: 0, rate_limit: { requests: 2, window_s: 60 } },
      tiers: [
        {
          id: 'gemma-3-270m',
          provider: 'local',
          model: 'gemma-3-270m-q4_k_m',
          price: { input_per_mtok: 0, output_per_mtok: 0 },
          context_window: 512,
        },
      ],
      policy: { version: 'rl', kind: 'threshold', threshold: {} },
      state: { path: 'state.sqlite' },
    }),
  );
  const server = await startServer({ configPath: config, port: 0, logLevel: 'silent', watchPolicy: false });
  try {
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${server.url}/v1/models`);
      statuses.push(response.status);
      if (response.status === 429) limited = response;
      else await response.arrayBuffer();
    }
    assert.deepEqual(statuses, [200, 200, 429]);
    assert.ok(Number(limited!.headers.get('retry-after')) > 0);
    assert.equal(((await limited!.json()) as { error: { code: string } }).error.code, 'MR_ERR_RATE_LIMITED');
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
