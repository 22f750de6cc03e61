import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { createFakeEncoder } from '../../support/fake-encoder.js';
import { rawExchange } from '../../support/raw-http.js';
import { buildTestApp } from '../../support/test-app.js';

/**
 * A client that hangs up while its routing decision waits on the encoder is no server error: the
 * decision is cancelled and logged at info, not as an internal error with a stack (found by the
 * reliability fuzzer's half-closed requests, issue 16).
 */
it('does not log a client that went away as an internal error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mechroute-gone-'));
  const lines: { level: number; msg: string; raw: string }[] = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => void lines.push({ ...JSON.parse(line), raw: line }) },
  );
  const { app, services } = await buildTestApp(dir, {
    encoder: createFakeEncoder({ delayMs: 5_000 }),
    logger,
  });
  try {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    const body = JSON.stringify({ prompt: 'What is the capital of France?' });
    const request = `POST /v1/route HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    // The client gives up after 300 ms and closes its socket; the encoder would take 5 s.
    const result = await rawExchange([{ bytes: Buffer.from(request) }], { port, timeoutMs: 300 });
    assert.equal(result.outcome, 'timeout');
    for (let i = 0; i < 40 && !lines.some((l) => /client (went away|closed)/.test(l.raw)); i++)
      await sleep(50);
    const gone = lines.find((l) => /client (went away|closed)/.test(l.raw));
    assert.ok(gone, JSON.stringify(lines));
    assert.ok(gone.level < 50, `logged at level ${gone.level}: ${gone.msg}`);
    assert.ok(!lines.some((l) => l.level >= 50), JSON.stringify(lines.filter((l) => l.level >= 50)));
  } finally {
    await app.close();
    await services.close();
    await rm(dir, { recursive: true, force: true });
  }
});
