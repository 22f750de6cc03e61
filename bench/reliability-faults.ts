import { setTimeout as sleep } from 'node:timers/promises';
import type { UpstreamFault } from '../test/support/openai-upstream.js';
import { type Answer, ask, isAnswer, type Outcome, waitForEncoder } from './reliability-client.js';
import { GPT4, MIXTRAL } from './reliability-setup.js';
import { tally } from './reliability-tally.js';
import type { HarnessUpstreams } from './reliability-upstreams.js';

/**
 * Faults injected at the loopback upstreams in three scenarios, each fault in turn:
 * - one deployment bad: the cheaper tier's first deployment fails, its second is healthy — every
 *   request must be answered (failover), and the breaker must keep the bad one from seeing them all;
 * - a whole tier bad: both deployments of the tier the router decides fail — the request goes to the
 *   next tier up (before the first delta) and is answered;
 * - the tier named by the client, bad: no other tier may answer for it — a clear error, with the
 *   status the fault deserves (429 + retry-after, 502, 503, 504), the upstream's words not passed on.
 * Nothing may hang past the request deadline; a stream cut after text was sent must end with an error
 * event, never look complete.
 */
export const FAULTS: { name: string; fault: UpstreamFault; midStream?: boolean }[] = [
  { name: '500', fault: { kind: 'status', status: 500 } },
  { name: '503', fault: { kind: 'status', status: 503 } },
  { name: '429 + retry-after', fault: { kind: 'status', status: 429, retryAfterSeconds: 1 } },
  { name: 'hang', fault: { kind: 'hang' } },
  { name: 'reset', fault: { kind: 'reset' } },
  { name: 'drop mid-stream', fault: { kind: 'drop-mid-stream', afterDeltas: 1 }, midStream: true },
  { name: 'malformed chunk', fault: { kind: 'malformed-chunk', afterDeltas: 1 }, midStream: true },
  { name: 'invalid JSON', fault: { kind: 'invalid-json' } },
  // Longer than the tier's per-attempt timeout.
  { name: 'slow first byte', fault: { kind: 'slow-first-byte', delayMs: MIXTRAL.timeout_ms + 500 } },
];
export const SMALL_FAULTS = ['429 + retry-after', 'hang', 'invalid JSON'];

export type Scenario = 'one deployment bad' | 'whole tier bad' | 'tier named, bad';

export interface FaultRequest {
  scenario: Scenario;
  fault: string;
  stream: boolean;
  status: number;
  code?: string;
  ms: number;
  answeredBy?: string;
  /** ok: a complete 2xx; error: an explicit error (status or stream error event); else hang or cut. */
  verdict: 'ok' | 'error' | 'hang' | 'cut';
  /** What this scenario and fault allow, and whether the request got it. */
  expected: boolean;
  why?: string;
}

export interface FaultCell {
  requests: number;
  by_verdict: Record<string, number>;
  by_status: Record<string, number>;
  unexpected: number;
  /** Requests that reached the faulty deployment(s) (the breaker should keep this below `requests`). */
  faulty_hits: number;
}

export interface FaultResult {
  requests: number;
  unexpected: number;
  hangs: number;
  past_deadline: number;
  /** Error answers that carry the upstream's own words (its error message). */
  leaked_upstream_text: number;
  cells: Record<Scenario, Record<string, FaultCell>>;
  examples: FaultRequest[];
}

export interface FaultOptions {
  url: string;
  token: string;
  upstreams: HarnessUpstreams;
  faults: readonly string[];
  /** Requests per scenario and fault (half streamed). */
  perCell: number;
  deadlineMs: number;
  /** The breakers' cooldown: waited out between faults so each starts with closed breakers. */
  cooldownMs: number;
}

const PROMPT = 'Question: Which gas do plants absorb from the air?\nA. Oxygen\nB. Carbon dioxide\nAnswer:';

/** Whether the outcome is what the scenario promises for this fault. */
function judge(
  scenario: Scenario,
  fault: (typeof FAULTS)[number],
  stream: boolean,
  a: Answer,
): string | undefined {
  const committed = stream && fault.midStream === true;
  if (a.status >= 200 && a.status < 300 && !a.streamError) {
    if (scenario === 'tier named, bad' && fault.name !== 'slow first byte')
      return 'answered despite every deployment failing';
    if (scenario === 'whole tier bad' && a.headers.get('x-mechroute-answered-by') === MIXTRAL.id) {
      return 'answered by the failing tier';
    }
    return undefined;
  }
  // An explicit error.
  if (committed) return a.code ? undefined : 'a cut stream ended without an error event';
  if (scenario !== 'tier named, bad') return `not answered (${a.status} ${a.code ?? ''})`;
  if (a.status === 500) return 'a 500 for an upstream fault';
  if (fault.name === '429 + retry-after') {
    if (a.status === 429 && a.retryAfter) return undefined;
    if (a.status === 503 && a.retryAfter) return undefined; // the breaker opened on the 429s
    return `expected 429 (or 503) with retry-after, got ${a.status}${a.retryAfter ? '' : ' without retry-after'}`;
  }
  if (a.status === 503 && !a.retryAfter) return 'a 503 without retry-after';
  if (fault.name === 'hang' || fault.name === 'slow first byte') {
    return a.status === 504 || a.status === 503 ? undefined : `expected 504 (or 503), got ${a.status}`;
  }
  return a.status === 502 || a.status === 503 ? undefined : `expected 502 (or 503), got ${a.status}`;
}

async function one(
  options: FaultOptions,
  scenario: Scenario,
  fault: (typeof FAULTS)[number],
  stream: boolean,
): Promise<FaultRequest> {
  const named = scenario !== 'whole tier bad';
  const outcome: Outcome = await ask(`${options.url}/v1/chat/completions`, {
    token: options.token,
    body: {
      model: named ? MIXTRAL.id : 'mechroute',
      messages: [{ role: 'user', content: PROMPT }],
      max_tokens: 6,
      stream,
    },
    // Threshold 0: the router decides the cheapest tier with a probe, the failing one.
    headers: named ? {} : { 'x-mechroute-threshold': '0' },
    waitMs: options.deadlineMs + 5_000,
  });
  const base = { scenario, fault: fault.name, stream, status: outcome.status, ms: Math.round(outcome.ms) };
  if (!isAnswer(outcome)) {
    return { ...base, verdict: outcome.kind, expected: false, why: outcome.message };
  }
  const answeredBy = outcome.headers.get('x-mechroute-answered-by') ?? undefined;
  const why = !outcome.complete
    ? 'cut: a stream that ended without [DONE] or an error event'
    : outcome.ms > options.deadlineMs + 1_000
      ? `answered after the deadline (${Math.round(outcome.ms)} ms)`
      : judge(scenario, fault, stream, outcome);
  const ok = outcome.status >= 200 && outcome.status < 300 && !outcome.streamError;
  return {
    ...base,
    ...(outcome.code ? { code: outcome.code } : {}),
    ...(answeredBy ? { answeredBy } : {}),
    verdict: !outcome.complete ? 'cut' : ok ? 'ok' : 'error',
    expected: why === undefined,
    ...(why ? { why } : {}),
    // The upstream's own message is "injected <status>": it belongs in the log, not in the answer.
    ...(outcome.text.includes('injected') ? { why: `${why ?? ''} upstream text in the answer`.trim() } : {}),
  };
}

export async function runFaults(options: FaultOptions, log: (line: string) => void): Promise<FaultResult> {
  const { upstreams } = options;
  const result: FaultResult = {
    requests: 0,
    unexpected: 0,
    hangs: 0,
    past_deadline: 0,
    leaked_upstream_text: 0,
    cells: { 'one deployment bad': {}, 'whole tier bad': {}, 'tier named, bad': {} },
    examples: [],
  };
  const record = (r: FaultRequest, hits: number) => {
    const cell = result.cells[r.scenario][r.fault] ?? {
      requests: 0,
      by_verdict: {},
      by_status: {},
      unexpected: 0,
      faulty_hits: 0,
    };
    result.cells[r.scenario][r.fault] = cell;
    cell.requests += 1;
    cell.faulty_hits = hits;
    tally(cell.by_verdict, r.verdict);
    tally(cell.by_status, r.code ? `${r.status} ${r.code}` : String(r.status));
    result.requests += 1;
    if (r.verdict === 'hang') result.hangs += 1;
    if (r.why?.includes('after the deadline')) result.past_deadline += 1;
    if (r.why?.includes('upstream text')) result.leaked_upstream_text += 1;
    if (!r.expected) {
      result.unexpected += 1;
      cell.unexpected += 1;
      if (result.examples.length < 30) result.examples.push(r);
    }
  };
  /**
   * Runs a scenario's requests, plain and streamed in turn, and counts the faulty upstreams' hits. One
   * at a time: a breaker just out of its cooldown lets one probe through, and a request beside it would
   * find both deployments taken (a 503 that says nothing about the fault).
   */
  const scenario = async (
    name: Scenario,
    fault: (typeof FAULTS)[number],
    faulty: { requests: readonly unknown[] }[],
  ) => {
    const before = faulty.reduce((s, u) => s + u.requests.length, 0);
    const done: FaultRequest[] = [];
    for (let i = 0; i < options.perCell; i++) done.push(await one(options, name, fault, i % 2 === 1));
    const hits = faulty.reduce((s, u) => s + u.requests.length, 0) - before;
    for (const r of done) record(r, hits);
  };
  // The routed scenario needs the encoder: not still busy with the load phase's long prompts.
  await waitForEncoder(options.url, options.token);
  for (const fault of FAULTS.filter((f) => options.faults.includes(f.name))) {
    log(`faults: ${fault.name}`);
    upstreams.heal();
    await sleep(options.cooldownMs);
    upstreams.mixtralA.setFault(fault.fault);
    await scenario('one deployment bad', fault, [upstreams.mixtralA]);
    upstreams.heal();
    await sleep(options.cooldownMs);
    upstreams.mixtralA.setFault(fault.fault);
    upstreams.mixtralB.setFault(fault.fault);
    await Promise.all([
      scenario('whole tier bad', fault, [upstreams.mixtralA, upstreams.mixtralB]),
      scenario('tier named, bad', fault, [upstreams.mixtralA, upstreams.mixtralB]),
    ]);
  }
  upstreams.heal();
  await sleep(Math.max(options.cooldownMs, GPT4.cooldown.seconds * 1000));
  return result;
}
