import { clientStatusForUpstream, ERROR_CODES, type ErrorCode } from '../error-codes.js';
import { MechrouteError } from '../errors.js';
import { TierError } from '../tiers/tier-errors.js';

/**
 * Any thrown value as the response a client gets: the status and retry advice of its code
 * (`error-codes.ts`), and a body in the OpenAI error shape so OpenAI clients surface it as they would
 * the provider's own. Anything that is not a MechrouteError is a bug whose details stay in the logs.
 */

const TYPE_BY_STATUS: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'insufficient_quota',
  403: 'permission_error',
  404: 'not_found_error',
  405: 'invalid_request_error',
  409: 'conflict_error',
  413: 'invalid_request_error',
  415: 'invalid_request_error',
  422: 'invalid_request_error',
  429: 'rate_limit_error',
  431: 'invalid_request_error',
};

export interface OpenAiErrorBody {
  error: { message: string; type: string; code: string; param: string | null };
}

export interface HttpErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: OpenAiErrorBody;
  /** True for a bug (the details are in the log, not the body). */
  internal: boolean;
}

/** The HTTP status a client sees for `error`, its upstream's status translated where it has one. */
export function httpStatusOf(error: MechrouteError): number {
  if (error instanceof TierError) {
    if (error.code === 'MR_ERR_UPSTREAM_STATUS') return clientStatusForUpstream(error.status);
    if (error.code === 'MR_ERR_UPSTREAM_LOCAL') {
      return error.status === 400 || error.status === 429 || error.status === 503 ? error.status : 502;
    }
    if (error.code === 'MR_ERR_UPSTREAM_EXHAUSTED') {
      // The last attempt's kind of failure: rate limited, unavailable, timed out, or a bad gateway
      // (which a refusal that let the next deployment try — 401/403/404 — is by then).
      const last = error.status;
      if (last === 429 || last === 503) return last;
      return last === 504 || last === 408 ? 504 : 502;
    }
  }
  return ERROR_CODES[error.code].status;
}

/** `x-should-retry` and `retry-after` for an error: the wait it carries wins over its code's default. */
export function retryHeaders(error: MechrouteError, status: number): Record<string, string> {
  if (error.retryAfterMs !== undefined) {
    return {
      'x-should-retry': 'true',
      'retry-after': String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))),
    };
  }
  // A translated upstream 4xx is the request's fault whatever its code's default says.
  const advice = status >= 400 && status < 500 && status !== 429 ? 'never' : ERROR_CODES[error.code].retry;
  if (advice === 'never') return { 'x-should-retry': 'false' };
  // An upstream's 503 or 429 passed on without a wait of its own still means "later", and says so.
  if (advice === 'later' || status === 503 || status === 429)
    return { 'x-should-retry': 'true', 'retry-after': '1' };
  return {};
}

const MAX_MESSAGE = 2000;

/** Long messages (a huge field echoed by a validator) are cut: responses and logs stay bounded. */
export function boundedMessage(message: string): string {
  return message.length <= MAX_MESSAGE
    ? message
    : `${message.slice(0, MAX_MESSAGE)}… (${message.length - MAX_MESSAGE} more characters)`;
}

export function toHttpError(error: unknown, requestId?: string): HttpErrorResponse {
  let code: ErrorCode = 'MR_ERR_INTERNAL';
  let status = 500;
  let message = 'internal error; see the server log';
  let headers: Record<string, string> = {};
  if (error instanceof MechrouteError) {
    code = error.code;
    status = httpStatusOf(error);
    headers = retryHeaders(error, status);
    message = status === 500 ? message : boundedMessage(error.message);
  } else {
    const client = fastifyClientError(error);
    if (client) {
      ({ status, code } = client);
      message = boundedMessage(client.message);
      headers = { 'x-should-retry': 'false' };
    }
  }
  if (requestId && (error instanceof TierError || status >= 500)) message += ` (request ${requestId})`;
  const type = TYPE_BY_STATUS[status] ?? (status >= 500 ? 'server_error' : 'invalid_request_error');
  const param = error instanceof MechrouteError ? paramOf(error) : null;
  return { status, headers, body: { error: { message, type, code, param } }, internal: status === 500 };
}

/** The request field an error is about, where it names one (OpenAI's `param`). */
function paramOf(error: MechrouteError): string | null {
  const param = (error as { param?: unknown }).param;
  return typeof param === 'string' ? param : null;
}

const CODE_BY_FASTIFY: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'MR_ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'MR_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MR_ERR_BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MR_ERR_BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MR_ERR_BAD_REQUEST',
  FST_ERR_BAD_URL: 'MR_ERR_BAD_REQUEST',
};

/** Fastify's own 4xx errors (malformed JSON, body too large, bad media type, a malformed URL). */
function fastifyClientError(
  error: unknown,
): { status: number; code: ErrorCode; message: string } | undefined {
  const e = error as { statusCode?: unknown; code?: unknown; message?: unknown } | null;
  const status = e?.statusCode;
  if (typeof status !== 'number' || status < 400 || status >= 500) return undefined;
  const mapped = typeof e?.code === 'string' ? CODE_BY_FASTIFY[e.code] : undefined;
  const code: ErrorCode = mapped ?? (status === 413 ? 'MR_ERR_BODY_TOO_LARGE' : 'MR_ERR_BAD_REQUEST');
  return {
    status: ERROR_CODES[code].status,
    code,
    message: typeof e?.message === 'string' ? e.message : 'bad request',
  };
}
