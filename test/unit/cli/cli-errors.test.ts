import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { z } from 'zod';
import { describeFailure } from '../../../src/cli/cli-failure.js';
import { CliOptionError, parseFlags } from '../../../src/cli/cli-flags.js';
import { registerStatsCommand } from '../../../src/cli/commands/stats.js';
import { requestServer, ServerUnreachableError } from '../../../src/cli/server-client.js';
import { ModelNotCachedError } from '../../../src/errors.js';
import { packageRoot } from '../../../src/paths.js';

const CLI = join(packageRoot, 'bin', 'mechroute.js');

/** Runs the real CLI; resolves with its output and exit code instead of rejecting on a non-zero exit. */
async function cli(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await promisify(execFile)('node', [CLI, ...args]);
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const e = error as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

/** A port nothing listens on: one the OS just handed out and took back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('CLI failures: one line that says what to do, a stack only for a bug', () => {
  test('a missing --file, a server that is not running, and a bad flag each print one line and exit 1', async () => {
    const missing = await cli('encode', '--file', '/nope/prompt.txt');
    assert.equal(missing.code, 1);
    assert.equal(
      missing.stderr,
      'mechroute: cannot read /nope/prompt.txt: no such file or directory [MR_ERR_FILE_UNREADABLE]\n',
    );

    const port = await closedPort();
    const stats = await cli('stats', '--url', `http://127.0.0.1:${port}`);
    assert.equal(stats.code, 1);
    assert.equal(
      stats.stderr,
      `mechroute: cannot reach http://127.0.0.1:${port}/v1/stats (connect ECONNREFUSED 127.0.0.1:${port}); ` +
        'start the server with `mechroute serve` (or `npm start`), or point --url at it [MR_ERR_SERVER_UNREACHABLE]\n',
    );

    const flag = await cli('train', '--traces', 'x.jsonl', '--folds', 'five');
    assert.equal(flag.code, 1);
    assert.equal(
      flag.stderr,
      'mechroute: train: --folds: expected a number, got "five" (see `mechroute train --help`) [MR_ERR_BAD_OPTION]\n',
    );
  });

  test('train lists every bad trace line and stops; bench routing’s hint names the store it was given', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mechroute-cli-errors-'));
    try {
      const good = (id: string) =>
        JSON.stringify({ id, prompt: `Question ${id}?`, outcomes: { weak: true, strong: false } });
      const traces = join(dir, 'traces.jsonl');
      await writeFile(traces, `${good('a')}\n{not json\n${good('b')}\n{"id":"c","outcomes":{}}\n`);
      const train = await cli('train', '--traces', traces);
      assert.equal(train.code, 1);
      assert.match(train.stderr, /^mechroute: invalid trace file .*traces\.jsonl:\n/);
      assert.match(train.stderr, /^ {2}line 2: /m);
      assert.match(train.stderr, /^ {2}line 4 \(id c\): /m);
      assert.match(
        train.stderr,
        /\(a bundle names its whole trace file by sha256, so it is not trained on part of one; fix or remove them, `mechroute traces validate .*traces\.jsonl` lists every one\) \[MR_ERR_INVALID_FILE\]\n$/,
      );

      const clean = join(dir, 'clean.jsonl');
      await writeFile(clean, `${good('a')}\n${good('b')}\n`);
      const store = join(dir, 'no-store-yet');
      const bench = await cli('bench', 'routing', '--train', clean, '--test', clean, '--store', store);
      assert.equal(bench.code, 1);
      assert.equal(
        bench.stderr,
        `mechroute: no activation store for encoder gemma-3-270m-q4_k_m at ${store}; run ` +
          `\`mechroute extract --traces ${clean} --store ${store}\` first (train and bench routing do it for ` +
          'you with --extract) [MR_ERR_TRAINING_DATA]\n',
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('--version prints the package version', async () => {
    const { version } = JSON.parse(await readFile(join(packageRoot, 'package.json'), 'utf8')) as {
      version: string;
    };
    const result = await cli('--version');
    assert.equal(result.code, 0);
    assert.equal(result.stdout, `${version}\n`);
    // After a command, --version is that command's own option (calibrate's policy version).
    const calibrate = await cli('calibrate', '--version', 'cal-1');
    assert.equal(calibrate.stdout, '');
    assert.match(calibrate.stderr, /required option '--probes <file>' not specified/);
  });

  test('tiers takes --probes for --bundle, as the other commands name the bundle, and refuses two files', async () => {
    const bundle = join(packageRoot, 'probes', 'routerbench.json');
    const [byBundle, byProbes] = await Promise.all([
      cli('tiers', 'list', '--bundle', bundle, '--json'),
      cli('tiers', 'list', '--probes', bundle, '--json'),
    ]);
    assert.equal(byProbes.code, 0, byProbes.stderr);
    assert.equal(byProbes.stdout, byBundle.stdout);
    assert.equal((JSON.parse(byProbes.stdout) as { tiers: unknown[] }).tiers.length, 8);
    const neither = await cli('tiers', 'list');
    assert.equal(neither.code, 1);
    assert.match(neither.stderr, /tiers list: --bundle: is required/);
    const both = await cli(
      'tiers',
      'list',
      '--bundle',
      bundle,
      '--probes',
      join(packageRoot, 'probes', 'default.json'),
    );
    assert.equal(both.code, 1);
    assert.match(both.stderr, /--bundle and --probes name different files/);
  });

  test('describeFailure: coded errors and system errors in one line, anything else with its stack', async () => {
    assert.equal(
      describeFailure(new ModelNotCachedError('m', '/cache/m.gguf')),
      'mechroute: model "m" is not downloaded (expected at /cache/m.gguf); run `mechroute models pull m` [MR_ERR_MODEL_NOT_CACHED]\n',
    );
    const enoent = await readFile('/nope/at/all').catch((e: unknown) => e);
    assert.equal(describeFailure(enoent), 'mechroute: /nope/at/all: no such file or directory [ENOENT]\n');
    const file = join(packageRoot, 'package.json');
    const notDir = await readdir(file).catch((e: unknown) => e);
    assert.equal(
      describeFailure(notDir),
      `mechroute: ${file}: a part of the path is not a directory [ENOTDIR]\n`,
    );
    // Node names no path for a read of a directory: the system call stands in.
    const eisdir = await readFile(packageRoot).catch((e: unknown) => e);
    assert.equal(describeFailure(eisdir), 'mechroute: read failed: it is a directory [EISDIR]\n');

    // A busy port, as fastify's listen reports it.
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as AddressInfo;
    const second = createServer();
    const busy = await new Promise<unknown>((resolve) => {
      second.once('error', resolve);
      second.listen(port, '127.0.0.1');
    });
    await new Promise((resolve) => holder.close(resolve));
    assert.equal(
      describeFailure(busy),
      `mechroute: cannot listen on 127.0.0.1:${port}: the port is in use; pick another with --port or PORT=… [EADDRINUSE]\n`,
    );

    const bug = describeFailure(new TypeError('x is undefined'));
    assert.match(bug, /^mechroute: unexpected error \(a bug in mechroute; please report it/);
    assert.match(bug, /TypeError: x is undefined\n\s+at /);
    // MECHROUTE_DEBUG=1 adds the stack to known failures.
    assert.match(
      describeFailure(new ModelNotCachedError('m', '/m'), true),
      /\[MR_ERR_MODEL_NOT_CACHED\]\nModelNotCachedError: .*\n\s+at /,
    );
  });

  test('parseFlags names the flag as typed, with what was given', () => {
    const schema = z.object({
      latencySamples: z.coerce.number().int().positive(),
      taus: z
        .string()
        .transform((s) => s.split(',').map(Number))
        .pipe(z.array(z.number().max(1, '--taus: each τ is in [0, 1]'))),
      out: z.string().min(1),
    });
    assert.deepEqual(parseFlags(schema, { latencySamples: '3', taus: '0.5', out: 'x' }, 'bench'), {
      latencySamples: 3,
      taus: [0.5],
      out: 'x',
    });
    assert.throws(
      () => parseFlags(schema, { latencySamples: 'many', taus: '2' }, 'bench routing'),
      (error: unknown) =>
        error instanceof CliOptionError &&
        error.code === 'MR_ERR_BAD_OPTION' &&
        error.message ===
          'bench routing: --latency-samples: expected a number, got "many"; --taus: each τ is in [0, 1]; ' +
            '--out: is required (see `mechroute bench routing --help`)',
    );
  });
});

describe('mechroute stats against a real HTTP server', () => {
  let server: Server;
  let url: string;
  let answer: { status: number; body: unknown } = { status: 200, body: {} };
  const seen: (string | undefined)[] = [];
  before(async () => {
    server = createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer.body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  async function stats(env: NodeJS.ProcessEnv, ...args: string[]): Promise<string> {
    let out = '';
    const program = new Command().exitOverride().configureOutput({ writeOut: (s) => (out += s) });
    registerStatsCommand(program, env);
    await program.parseAsync(['stats', '--url', url, ...args], { from: 'user' });
    return out;
  }

  test('prints the per-tier table, sends MECHROUTE_TOKEN, and explains a 401', async () => {
    answer = {
      status: 200,
      body: {
        policy_version: '7',
        requests: 4,
        escalation_rate: 0.25,
        fallback_rate: 0,
        tiers: {
          'gemma-3-270m': {
            requests: 3,
            cost_usd: 0,
            feedback: 2,
            success_rate: 0.5,
            cost_per_success_usd: 0,
            mean_latency_ms: 41.2,
          },
        },
        overall: { feedback: 2, cost_per_success_usd: 0 },
        policies: {},
        task_classes: {},
      },
    };
    const out = await stats({ MECHROUTE_TOKEN: 'tok' });
    assert.match(out, /^policy 7: 4 requests, escalation rate 25\.0 %, fallback rate 0\.0 %$/m);
    assert.match(out, /^gemma-3-270m +3 +0\.000000 +2 +50\.0 % +\$0\.000000 +41$/m);
    assert.equal(seen.at(-1), 'Bearer tok');

    answer = { status: 401, body: { error: { message: 'missing bearer token' } } };
    await assert.rejects(
      stats({}),
      /answered 401: .*missing bearer token.*; set MECHROUTE_TOKEN to a token the server accepts/,
    );

    answer = { status: 200, body: { hello: 'world' } };
    await assert.rejects(
      stats({}),
      /unexpected answer \(.*\); is --url a mechroute server of this version\?/,
    );
  });

  test('an unreachable server is a ServerUnreachableError naming the URL', async () => {
    const port = await closedPort();
    await assert.rejects(
      requestServer({
        base: `http://127.0.0.1:${port}`,
        path: '/admin/policy',
        method: 'GET',
        schema: z.object({}),
        command: 'policy',
        tokenEnv: [],
      }),
      (error: unknown) =>
        error instanceof ServerUnreachableError && error.message.includes(`127.0.0.1:${port}/admin/policy`),
    );
  });
});
