import { MechrouteError } from '../errors.js';

/**
 * One registry of coded errors and the HTTP status each gets. Responses use the OpenAI error shape so
 * OpenAI clients surface them as they would the provider's own.
 */
const STATUS_BY_CODE: Record<string, number> = {
  MR_ERR_BAD_REQUEST: 400,
  MR_ERR_INVALID_OVERRIDES: 400,
  MR_ERR_INVALID_ENCODE_REQUEST: 400,
  MR_ERR_PROMPT_TOO_LONG: 400,
  MR_ERR_UNKNOWN_MODEL: 404,
  MR_ERR_UNKNOWN_REQUEST: 404,
  MR_ERR_UNAUTHORIZED: 401,
  MR_ERR_FORBIDDEN: 403,
  MR_ERR_BUDGET_EXCEEDED: 402,
  MR_ERR_RATE_LIMITED: 429,
  MR_ERR_ENCODER_QUEUE_FULL: 503,
  MR_ERR_TIER_UNAVAILABLE: 503,
  MR_ERR_NO_TIERS: 503,
  MR_ERR_NOT_READY: 503,
  MR_ERR_UPSTREAM_TIMEOUT: 504,
  MR_ERR_REQUEST_TIMEOUT: 504,
  MR_ERR_UPSTREAM_UNAVAILABLE: 503,
  MR_ERR_UPSTREAM_EXHAUSTED: 502,
  MR_ERR_UPSTREAM_STATUS: 502,
  MR_ERR_UPSTREAM_NETWORK: 502,
  MR_ERR_UPSTREAM_PROTOCOL: 502,
  MR_ERR_UPSTREAM_TRUNCATED: 502,
  MR_ERR_UPSTREAM_NO_CREDENTIALS: 503,
  MR_ERR_UNSUPPORTED_PARAMETER: 400,
};

const TYPE_BY_STATUS: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  402: 'insufficient_quota',
  404: 'not_found_error',
  413: 'invalid_request_error',
  429: 'rate_limit_error',
};

export class HttpError extends MechrouteError {
  readonly status: number;
  constructor(status: number, code: string, message: string) {
    super(code, message);
    this.status = status;
  }
}

export interface OpenAiErrorBody {
  error: { message: string; type: string; code: string; param: string | null };
}

/**
 * Status and body for any thrown value. Known errors keep their message; anything else is a bug whose
 * details stay in the logs, never in the response.
 */
export function toHttpError(error: unknown): { status: number; body: OpenAiErrorBody; internal: boolean } {
  let status = 500;
  let code = 'MR_ERR_INTERNAL';
  let message = 'internal error; see the server log';
  if (error instanceof HttpError) {
    status = error.status;
    code = error.code;
    message = error.message;
  } else if (error instanceof MechrouteError) {
    status = STATUS_BY_CODE[error.code] ?? 500;
    code = error.code;
    message = status === 500 ? message : error.message;
  } else if (isFastifyClientError(error)) {
    status = error.statusCode;
    code = status === 413 ? 'MR_ERR_BODY_TOO_LARGE' : 'MR_ERR_BAD_REQUEST';
    message = error.message;
  }
  const type = TYPE_BY_STATUS[status] ?? (status >= 500 ? 'server_error' : 'invalid_request_error');
  // The parameter a 400 is about, where the error names one (UnsupportedParameterError), as OpenAI does.
  const named = (error as { param?: unknown } | null)?.param;
  const param = status < 500 && typeof named === 'string' ? named : null;
  return { status, body: { error: { message, type, code, param } }, internal: status === 500 };
}

/** Fastify's own 4xx errors (malformed JSON, body too large, unsupported media type). */
function isFastifyClientError(error: unknown): error is { statusCode: number; message: string } {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500;
}
