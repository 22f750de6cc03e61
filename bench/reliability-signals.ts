import { rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Answer, ask, isAnswer, type Outcome, waitForEncoder } from './reliability-client.js';
import type { ServerProcess } from './reliability-server.js';
import { GPT4, policyYaml, SERVER_SETTINGS } from './reliability-setup.js';
import { tally } from './reliability-tally.js';
import type { HarnessUpstreams } from './reliability-upstreams.js';

/**
 * The two signals an operator sends a running server:
 * - SIGHUP after the policy file was written torn, invalid, emptied or deleted: the running policy must
 *   stay until a whole, valid file is there, and that file must then be installed (issue 16, #6);
 * - SIGTERM with requests in flight: each must finish within server.shutdown_drain_ms or end with
 *   MR_ERR_SHUTTING_DOWN (a 503, or an error event in a stream) — none cut silently — and the process
 *   must exit soon after.
 */
export interface SighupStep {
  step: string;
  expected_version: string;
  version: string;
  /** For the whole file: the tier its threshold (1) must route to. */
  expected_tier?: string;
  tier?: string;
  ok: boolean;
}

export interface SighupResult {
  steps: SighupStep[];
  failed: number;
  /** The server was still up after every step. */
  alive: boolean;
}

const PROMPT = 'Question: Which gas do plants absorb from the air?\nA. Oxygen\nB. Carbon dioxide\nAnswer:';

async function policyVersion(server: ServerProcess, token: string): Promise<string> {
  const outcome = await ask(`${server.url}/admin/policy`, { token, waitMs: 5_000 });
  if (!isAnswer(outcome) || outcome.status !== 200) return `(no answer: ${outcome.status})`;
  return (JSON.parse(outcome.text) as { policy_version: string }).policy_version;
}

async function routedTier(server: ServerProcess, token: string): Promise<string> {
  await waitForEncoder(server.url, token);
  const outcome = await ask(`${server.url}/v1/route`, { token, body: { prompt: PROMPT }, waitMs: 15_000 });
  if (!isAnswer(outcome) || outcome.status !== 200) return `(no answer: ${outcome.status})`;
  return (JSON.parse(outcome.text) as { tier: string }).tier;
}

export async function runSighup(
  server: ServerProcess,
  policyPath: string,
  token: string,
  full: boolean,
  log: (line: string) => void,
): Promise<SighupResult> {
  const steps: SighupStep[] = [];
  /**
   * Writes, sends SIGHUP, and reads the running version: at once if it becomes the expected new one,
   * else after long enough for the watcher to have read the file (it waits for the file to stay quiet
   * for 200-500 ms, depending on the version of mechroute).
   */
  const step = async (name: string, write: () => Promise<void>, expected: string, expectedTier?: string) => {
    const before = await policyVersion(server, token);
    await write();
    server.kill('SIGHUP');
    const changeExpected = expected !== before;
    const until = performance.now() + (changeExpected ? 3_000 : 1_200);
    let version = before;
    while (performance.now() < until) {
      await sleep(100);
      version = await policyVersion(server, token);
      if (version !== before) break;
    }
    const tier = expectedTier ? await routedTier(server, token) : undefined;
    const ok = version === expected && (expectedTier === undefined || tier === expectedTier);
    steps.push({
      step: name,
      expected_version: expected,
      version,
      ...(expectedTier ? { expected_tier: expectedTier, tier: tier! } : {}),
      ok,
    });
    log(`sighup: ${name}: version ${version}${tier ? `, tier ${tier}` : ''}${ok ? '' : ' (unexpected)'}`);
  };
  const running = await policyVersion(server, token);
  const whole = policyYaml('2', 1);
  // Cut before the threshold section: valid YAML, and without the completeness rule a valid policy
  // that routes on default thresholds.
  const torn = whole.slice(0, whole.indexOf('threshold:'));
  await step('version 2 written torn (no threshold section)', () => writeFile(policyPath, torn), running);
  // Threshold 1: no tier is predicted good enough, so the dearest is chosen.
  await step('version 2 completed in place', () => writeFile(policyPath, whole), '2', GPT4.id);
  if (full) {
    await step('a torn rewrite cut mid-value', () => writeFile(policyPath, whole.slice(0, -9)), '2');
    await step(
      'binary garbage',
      () => writeFile(policyPath, Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x5b, 0x0a, 0x3a])),
      '2',
    );
    await step('an empty file', () => writeFile(policyPath, ''), '2');
  }
  await step(
    'an invalid policy (unknown kind)',
    () => writeFile(policyPath, 'version: "3"\nkind: nonsense\n'),
    '2',
  );
  await step('the file deleted', () => rm(policyPath, { force: true }), '2');
  await step('a whole version 3', () => writeFile(policyPath, policyYaml('3', 0.5)), '3');
  return { steps, failed: steps.filter((s) => !s.ok).length, alive: server.exit() === undefined };
}

export interface SigtermRequest {
  long: boolean;
  stream: boolean;
  status: number;
  code?: string;
  ms: number;
  /** finished: a complete 2xx; shutdown: MR_ERR_SHUTTING_DOWN; other: another explicit error; cut: silently cut. */
  verdict: 'finished' | 'shutdown' | 'other' | 'cut' | 'hang';
}

export interface SigtermResult {
  in_flight: number;
  by_verdict: Record<string, number>;
  /** Requests that ended without a complete answer or an explicit error. */
  cut_silently: number;
  /** Short requests (done well within the drain) that did not finish. */
  short_not_finished: number;
  /** Requests sent after SIGTERM: refused (connection refused or 503 MR_ERR_SHUTTING_DOWN)? */
  after_sigterm: Record<string, number>;
  exit_code: number | null;
  exit_signal: string | null;
  /** From SIGTERM to the process's exit. */
  exit_ms: number;
  drain_ms: number;
  requests: SigtermRequest[];
}

function verdictOf(o: Outcome): SigtermRequest['verdict'] {
  if (!isAnswer(o)) return o.kind === 'hang' ? 'hang' : 'cut';
  const a: Answer = o;
  if (!a.complete) return 'cut';
  if (a.status >= 200 && a.status < 300 && !a.streamError) return 'finished';
  return a.code === 'MR_ERR_SHUTTING_DOWN' ? 'shutdown' : 'other';
}

export async function runSigterm(
  server: ServerProcess,
  upstreams: HarnessUpstreams,
  token: string,
  log: (line: string) => void,
): Promise<SigtermResult> {
  const drainMs = SERVER_SETTINGS.shutdown_drain_ms;
  // Answers drip at 100 ms a word: 8 words finish within the drain, 60 words (6 s) outlive it.
  upstreams.script.deltas = 60;
  upstreams.script.deltaDelayMs = 100;
  const shapes = [false, true].flatMap((long) =>
    [false, true].flatMap((stream) => Array.from({ length: 4 }, () => ({ long, stream }))),
  );
  const waitMs = SERVER_SETTINGS.request_timeout_ms + drainMs + 5_000;
  const inFlight = shapes.map(async ({ long, stream }) => {
    const outcome = await ask(`${server.url}/v1/chat/completions`, {
      token,
      body: {
        model: GPT4.id,
        messages: [{ role: 'user', content: PROMPT }],
        max_tokens: long ? 60 : 8,
        stream,
      },
      waitMs,
    });
    const code = isAnswer(outcome) ? outcome.code : undefined;
    return {
      long,
      stream,
      status: outcome.status,
      ...(code ? { code } : {}),
      ms: Math.round(outcome.ms),
      verdict: verdictOf(outcome),
    } satisfies SigtermRequest;
  });
  // In flight means the server is working on them: every one has reached the upstream (on a loaded
  // machine 300 ms was not always enough, and a connection whose request was not read yet is idle to
  // Node, closed at shutdown like any idle keep-alive connection).
  const seen = upstreams.gpt4.requests.length;
  const until = performance.now() + 10_000;
  while (upstreams.gpt4.requests.length < seen + shapes.length && performance.now() < until) await sleep(20);
  await sleep(100);
  log(`sigterm: ${upstreams.gpt4.requests.length - seen} of ${shapes.length} requests in flight, SIGTERM`);
  const termAt = performance.now();
  server.kill('SIGTERM');
  await sleep(200);
  const after = await Promise.all(
    Array.from({ length: 4 }, () =>
      ask(`${server.url}/v1/models`, { token, waitMs: 5_000 }).then((o) =>
        isAnswer(o)
          ? `${o.status} ${o.code ?? ''}`.trim()
          : o.message.includes('ECONNREFUSED')
            ? 'refused'
            : o.kind,
      ),
    ),
  );
  const requests = await Promise.all(inFlight);
  const exit = await server.exited;
  const exitMs = Math.round(performance.now() - termAt);
  upstreams.script.deltas = 6;
  upstreams.script.deltaDelayMs = 0;
  const byVerdict: Record<string, number> = {};
  for (const r of requests) tally(byVerdict, r.verdict);
  const afterCounts: Record<string, number> = {};
  for (const a of after) tally(afterCounts, a);
  return {
    in_flight: requests.length,
    by_verdict: byVerdict,
    cut_silently: requests.filter((r) => r.verdict === 'cut' || r.verdict === 'hang').length,
    short_not_finished: requests.filter((r) => !r.long && r.verdict !== 'finished').length,
    after_sigterm: afterCounts,
    exit_code: exit.code,
    exit_signal: exit.signal,
    exit_ms: exitMs,
    drain_ms: drainMs,
    requests,
  };
}
