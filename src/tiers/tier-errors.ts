import type { ErrorCode } from '../error-codes.js';
import { MechrouteError } from '../errors.js';

/**
 * Failures of a tier call. `isRetryable` says whether the same call may succeed if repeated (it drives
 * retries and failover); `status` is the upstream's HTTP status where one answered, else the status that
 * best describes the failure (504 timeout, 502 bad upstream, 503 unavailable, 499 caller gone) — what a
 * client of mechroute sees is derived from it by `httpStatusOf` (src/server/http-errors.ts).
 *
 * `message` is what a client may read: the tier and what kind of failure, never an upstream's own words
 * (error bodies have carried passwords, internal addresses and HTML pages). `detail` holds those words,
 * redacted of our credentials, for the log only.
 */
export class TierError extends MechrouteError {
  readonly status: number;
  readonly isRetryable: boolean;
  /** `tier/deployment` that failed, where known. */
  readonly deployment: string | undefined;
  /** The upstream's own words (body excerpt, socket error), credentials redacted: logs only. */
  readonly detail: string | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    fields: {
      status: number;
      isRetryable?: boolean;
      retryAfterMs?: number | undefined;
      deployment?: string | undefined;
      detail?: string | undefined;
      cause?: unknown;
    },
  ) {
    super(code, message, { cause: fields.cause, retryAfterMs: fields.retryAfterMs });
    this.status = fields.status;
    this.isRetryable = fields.isRetryable ?? isRetryableStatus(fields.status);
    this.deployment = fields.deployment;
    this.detail = fields.detail || undefined;
  }
}

/** The AI SDK's table: timeouts, conflicts, rate limits and server errors may pass on a retry. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/**
 * 401/403/404 are faults of one deployment (key, permissions, model name), not of the request, so
 * another deployment may well serve it even though repeating the same call would not.
 */
export function isDeploymentFault(error: TierError): boolean {
  return error.status === 401 || error.status === 403 || error.status === 404;
}

/**
 * Whether another tier may succeed where this one failed: the tier was down, unreachable, overloaded
 * or broken — not when the request itself was refused (a 400 would be refused again) or the caller left.
 */
export function canFailOver(error: TierError): boolean {
  if (error.code === 'MR_ERR_UPSTREAM_ABORTED' || error.code === 'MR_ERR_REQUEST_TIMEOUT') return false;
  return (
    error.isRetryable ||
    isDeploymentFault(error) ||
    error.code === 'MR_ERR_UPSTREAM_UNAVAILABLE' ||
    error.code === 'MR_ERR_UPSTREAM_NO_CREDENTIALS' ||
    // A tier that cannot honour a parameter (the local model has no web search): another may.
    error.code === 'MR_ERR_UNSUPPORTED_PARAMETER'
  );
}

/** `gpt-4/1` → `gpt-4`: clients learn which tier failed, not the deployment layout behind it. */
const tierOf = (deployment: string | undefined) => {
  if (!deployment) return '';
  const slash = deployment.lastIndexOf('/');
  return ` (tier ${slash > 0 ? deployment.slice(0, slash) : deployment})`;
};

export class UpstreamStatusError extends TierError {
  constructor(status: number, deployment: string | undefined, detail: string, retryAfterMs?: number) {
    super('MR_ERR_UPSTREAM_STATUS', `upstream answered HTTP ${status}${tierOf(deployment)}`, {
      status,
      retryAfterMs,
      deployment,
      detail,
    });
  }
}

export class UpstreamTimeoutError extends TierError {
  constructor(deployment: string | undefined, phase: 'first byte' | 'total', ms: number) {
    super(
      'MR_ERR_UPSTREAM_TIMEOUT',
      `upstream timed out${tierOf(deployment)}: no ${phase === 'first byte' ? 'first byte' : 'complete answer'} within ${ms} ms`,
      { status: 504, deployment },
    );
  }
}

export class UpstreamNetworkError extends TierError {
  constructor(deployment: string | undefined, cause: unknown) {
    super('MR_ERR_UPSTREAM_NETWORK', `network error talking to the upstream${tierOf(deployment)}`, {
      status: 502,
      deployment,
      detail: describeNetworkError(cause),
      cause,
    });
  }
}

/** A body or chunk that is not what the OpenAI wire format promises. */
export class UpstreamProtocolError extends TierError {
  constructor(deployment: string | undefined, problem: string) {
    super('MR_ERR_UPSTREAM_PROTOCOL', `malformed upstream response${tierOf(deployment)}`, {
      status: 502,
      deployment,
      detail: problem,
    });
  }
}

/** The stream ended before a finish: reported, never passed on as a complete answer. */
export class UpstreamTruncatedError extends TierError {
  constructor(deployment: string | undefined, deltas: number) {
    super(
      'MR_ERR_UPSTREAM_TRUNCATED',
      `upstream stream ended without a finish after ${deltas} text deltas${tierOf(deployment)}`,
      { status: 502, deployment },
    );
  }
}

/** The caller went away; nothing to retry and no fault of the deployment. */
export class UpstreamAbortedError extends TierError {
  constructor(deployment: string | undefined) {
    super('MR_ERR_UPSTREAM_ABORTED', `request aborted by the caller${tierOf(deployment)}`, {
      status: 499,
      isRetryable: false,
      deployment,
    });
  }
}

/**
 * The request could not be put on the wire (e.g. JSON.stringify overflowed on a pathological value):
 * the request's fault, found before any byte left — never an upstream failure, never a breaker trip.
 */
export class UpstreamRequestError extends TierError {
  constructor(deployment: string | undefined, problem: string) {
    super('MR_ERR_UPSTREAM_REQUEST', `the request cannot be sent to the upstream${tierOf(deployment)}`, {
      status: 400,
      isRetryable: false,
      deployment,
      detail: problem,
    });
  }
}

export class MissingCredentialsError extends TierError {
  constructor(deployment: string, envVar: string) {
    super(
      'MR_ERR_UPSTREAM_NO_CREDENTIALS',
      `${deployment} needs environment variable ${envVar}, which is not set`,
      { status: 503, isRetryable: false, deployment },
    );
  }
}

export class TierUnavailableError extends TierError {
  constructor(tier: string, reason: string, retryAfterMs?: number) {
    super('MR_ERR_UPSTREAM_UNAVAILABLE', `tier "${tier}" is unavailable: ${reason}`, {
      status: 503,
      isRetryable: false,
      retryAfterMs,
    });
  }
}

export class UnknownTierError extends TierError {
  constructor(tier: string, known: readonly string[]) {
    super(
      'MR_ERR_UPSTREAM_UNKNOWN_TIER',
      `unknown tier "${tier}"; known tiers: ${known.join(', ') || '(none)'}`,
      { status: 404, isRetryable: false },
    );
  }
}

/** Every deployment of a tier was tried (or cooling down) and none answered. */
export class TierExhaustedError extends TierError {
  readonly attempts: readonly TierError[];
  constructor(tier: string, attempts: readonly TierError[]) {
    const last = attempts.at(-1);
    super(
      'MR_ERR_UPSTREAM_EXHAUSTED',
      `every deployment of tier "${tier}" failed (${attempts.length} attempts); last: ${last?.message ?? 'none'}`,
      {
        status: last?.status ?? 502,
        // Another tier (or a later call) may still succeed: the policy decides whether to escalate.
        isRetryable: true,
        retryAfterMs: last?.retryAfterMs,
        detail: attempts.map((e) => `${e.message}${e.detail ? `: ${e.detail}` : ''}`).join('\n'),
      },
    );
    this.attempts = attempts;
  }
}

/**
 * The local model rejected or failed the request. A refusal we word ourselves (prompt too long, queue
 * full: 400, 429, 503) keeps its words; anything else is reported as a failure, its text in `detail`.
 */
export class LocalModelError extends TierError {
  constructor(deployment: string | undefined, problem: string, status: number, cause?: unknown) {
    const ours = status === 400 || status === 429 || status === 503;
    super(
      'MR_ERR_UPSTREAM_LOCAL',
      `local model${tierOf(deployment)}: ${ours ? problem : 'generation failed'}`,
      {
        status,
        deployment,
        cause,
        detail: ours ? undefined : problem,
      },
    );
  }
}

/**
 * A tier cannot do what a request parameter asks (the local model cannot search the web), so it
 * refuses the request rather than answer while ignoring it. Not retryable; a routed request may still
 * be served by another tier.
 */
export class UnsupportedParameterError extends TierError {
  /** The parameter, as OpenAI names it in errors (`response_format`, `messages[1].content[0]`). */
  readonly param: string;
  constructor(deployment: string | undefined, param: string, reason: string) {
    super('MR_ERR_UNSUPPORTED_PARAMETER', `${param}: ${reason}${tierOf(deployment)}`, {
      status: 400,
      deployment,
    });
    this.param = param;
  }
}

function describeNetworkError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  const code = cause?.code ?? (error as NodeJS.ErrnoException | undefined)?.code;
  const message = cause?.message ?? (error as Error | undefined)?.message ?? String(error);
  return code && !message.includes(code) ? `${code} ${message}` : message;
}

/**
 * `retry-after-ms` (OpenAI's) or `retry-after` (seconds or an HTTP date), in ms; undefined if absent or
 * unreadable. Negative waits become 0.
 */
export function parseRetryAfter(headers: Headers, now: number = Date.now()): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && ms.trim() !== '' && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const value = headers.get('retry-after');
  if (value === null || value.trim() === '') return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(value)) return Math.max(0, Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Replaces every secret in `text`; used on upstream bodies, which sometimes echo the key back. */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) if (secret && secret.length >= 4) out = out.split(secret).join('[redacted]');
  return out;
}

/** Any thrown value as a TierError, so callers see one error type. */
export function toTierError(error: unknown, deployment: string | undefined): TierError {
  if (error instanceof TierError) return error;
  return new LocalModelError(deployment, (error as Error)?.message ?? String(error), 500, error);
}
