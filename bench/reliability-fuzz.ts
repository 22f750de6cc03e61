import { createRng } from '../src/seeded-rng.js';
import { type RawResult, rawExchange } from '../test/support/raw-http.js';
import { type FuzzCase, type FuzzContext, fuzzCases } from './reliability-fuzz-cases.js';
import {
  type Example,
  type ExampleBook,
  errorCode,
  errorShape,
  exampleBook,
  isCapacityAnswer,
  runPool,
  tally,
} from './reliability-tally.js';

/**
 * Sends the fuzzer's hostile requests to a running server over raw sockets, from many loopback source
 * addresses (so the per-address throttle on failed logins does not answer for the server), and
 * classifies every answer: its status; whether an error is in the OpenAI shape (never fastify's
 * default); a 2xx without a token on a guarded route (an auth bypass); a 5xx (a defect, whatever the
 * input); no complete answer in time (a hang); an answer that leaks an upstream key.
 */
export interface FuzzOptions {
  port: number;
  token: string;
  /** Secrets that must never appear in an answer. */
  secrets: readonly string[];
  requests: number;
  /** Cases that never finish sending (each holds a connection until the server's receive timeout). */
  slowRequests: number;
  seed: number;
  concurrency: number;
  /** How long any complete request may take to be answered (the server's request deadline + margin). */
  answerWithinMs: number;
  /** How long a never-finished request may take (the server's receive timeout + its check interval). */
  incompleteWithinMs: number;
}

export interface FuzzResult {
  sent: number;
  answered: number;
  by_status: Record<string, number>;
  by_family: Record<string, { sent: number; by_status: Record<string, number> }>;
  /** Answers of 500 and above (the upstreams are healthy during the fuzz). */
  status_5xx: number;
  /**
   * Of those, the router's capacity answers: 503 from encoder admission with a retry-after, or 504 at
   * the request deadline — other clients' hostile prompts filled the encoder, not this request's input.
   * The rest are 5xx from client input: defects.
   */
  capacity_5xx: number;
  auth_bypasses: number;
  /** Error answers not in the OpenAI error shape (HEAD answers have no body and are not counted). */
  bad_shape: number;
  /** Of those, fastify's own `{statusCode, error, message}`. */
  fastify_shape: number;
  /** No complete answer in time. */
  hangs: number;
  /** The server closed the connection without a status line. */
  closed_without_answer: number;
  /** The same after the client half-closed its side (no answer is due then). */
  closed_after_half_close: number;
  /** A status line came, then the connection closed before the body was complete. */
  cut: number;
  leaked_secrets: number;
  /** Error bodies over 16 KB (unbounded echo of the input). */
  oversized_errors: number;
  /** Slowest answer to a complete request, and to a never-finished one. */
  max_answer_ms: number;
  max_incomplete_answer_ms: number;
  seconds: number;
  examples: Record<string, Example[]>;
}

const OVERSIZED = 16 * 1024;

/** The i-th loopback source address: 127.0.x.y with x, y in 1..250 (62,500 distinct clients). */
export const loopbackAddress = (i: number) => `127.0.${1 + (Math.floor(i / 250) % 250)}.${1 + (i % 250)}`;

function classify(
  c: FuzzCase,
  r: RawResult,
  options: FuzzOptions,
  book: ExampleBook,
  result: FuzzResult,
): void {
  const key = r.outcome === 'answered' ? String(r.status) : r.outcome;
  const family = result.by_family[c.family] ?? { sent: 0, by_status: {} };
  result.by_family[c.family] = family;
  family.sent += 1;
  tally(family.by_status, key);
  tally(result.by_status, key);
  const example = (kind: string) => book.add(kind, c, r);
  if (r.outcome === 'timeout') {
    result.hangs += 1;
    example('hang');
    return;
  }
  if (r.outcome === 'closed-without-answer') {
    // A client that half-closes is gone to Node's HTTP server (it aborts the request): no answer is due.
    if (c.halfClose) {
      result.closed_after_half_close += 1;
      return;
    }
    result.closed_without_answer += 1;
    example('closed without answer');
    return;
  }
  if (r.outcome === 'cut') {
    result.cut += 1;
    example('cut');
    return;
  }
  if (r.outcome !== 'answered') return;
  result.answered += 1;
  if (c.incomplete) result.max_incomplete_answer_ms = Math.max(result.max_incomplete_answer_ms, r.ms);
  else result.max_answer_ms = Math.max(result.max_answer_ms, r.ms);
  const text = r.body.toString('utf8');
  if (r.status >= 500) {
    result.status_5xx += 1;
    const code = errorCode(r.body);
    if (isCapacityAnswer(r.status, code, r.headers)) {
      result.capacity_5xx += 1;
      example(`${r.status} ${code} (capacity)`);
    } else example(`${r.status} ${code ?? ''}`);
  }
  const bypass = (status: number, i: number) => c.mayPass[i] === false && status >= 200 && status < 300;
  if (bypass(r.status, 0) || r.more.some((status, i) => bypass(status, i + 1))) {
    result.auth_bypasses += 1;
    example('auth bypass');
  }
  if (r.status >= 400 && !c.head) {
    const shape = errorShape(r.body);
    if (shape !== 'openai') {
      result.bad_shape += 1;
      if (shape === 'fastify') result.fastify_shape += 1;
      example(`error shape: ${shape}`);
    }
    if (r.body.length > OVERSIZED) {
      result.oversized_errors += 1;
      example('oversized error body');
    }
  }
  if (options.secrets.some((s) => text.includes(s))) {
    result.leaked_secrets += 1;
    example('secret in answer');
  }
}

export async function runFuzz(options: FuzzOptions, log: (line: string) => void): Promise<FuzzResult> {
  const ctx: FuzzContext = { port: options.port, token: options.token };
  const cases = fuzzCases(createRng(options.seed), ctx, options.requests, options.slowRequests);
  const result: FuzzResult = {
    sent: 0,
    answered: 0,
    by_status: {},
    by_family: {},
    status_5xx: 0,
    capacity_5xx: 0,
    auth_bypasses: 0,
    bad_shape: 0,
    fastify_shape: 0,
    hangs: 0,
    closed_without_answer: 0,
    closed_after_half_close: 0,
    cut: 0,
    leaked_secrets: 0,
    oversized_errors: 0,
    max_answer_ms: 0,
    max_incomplete_answer_ms: 0,
    seconds: 0,
    examples: {},
  };
  const book = exampleBook(3);
  const started = performance.now();
  let done = 0;
  const send = async (c: FuzzCase, i: number) => {
    const r = await rawExchange(c.parts, {
      port: options.port,
      localAddress: loopbackAddress(i),
      timeoutMs: c.incomplete ? options.incompleteWithinMs : options.answerWithinMs,
      head: c.head,
      halfClose: c.halfClose,
      answers: c.answers,
    });
    result.sent += 1;
    classify(c, r, options, book, result);
    if (++done % 1000 === 0) log(`fuzz: ${done}/${cases.length}`);
  };
  // The never-finished requests all start at once, beside the pool: each waits out a receive timeout.
  const slow = cases.filter((c) => c.incomplete);
  const slowDone = Promise.all(slow.map((c, i) => send(c, 60_000 + i)));
  await runPool(
    cases.filter((c) => !c.incomplete),
    options.concurrency,
    send,
  );
  await slowDone;
  result.seconds = Math.round((performance.now() - started) / 100) / 10;
  result.examples = book.all();
  return result;
}
