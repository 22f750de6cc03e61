/**
 * Every `MR_ERR_*` code mechroute uses, with the HTTP status a client gets for it and whether a retry
 * can help. One table, so a new code cannot reach a client as an accidental 500, and so the retry
 * headers (`x-should-retry`, `retry-after`) follow one rule.
 *
 * `retry`:
 * - `never`: repeating the same request cannot succeed (bad input, configuration, auth): clients are
 *   told `x-should-retry: false`, so the `openai` SDK does not repeat it three times;
 * - `later`: it can, after a wait (overload, rate limits, cooling-down tiers): `x-should-retry: true`
 *   and a `retry-after` where the wait is known;
 * - `default`: no advice (transient upstream failures; the client's own policy decides).
 */
export type RetryAdvice = 'never' | 'later' | 'default';

export interface ErrorCodeSpec {
  status: number;
  retry: RetryAdvice;
}

const spec = (status: number, retry: RetryAdvice): ErrorCodeSpec => ({ status, retry });

export const ERROR_CODES = {
  // The request itself.
  MR_ERR_BAD_REQUEST: spec(400, 'never'),
  MR_ERR_UNSUPPORTED_PARAMETER: spec(400, 'never'),
  MR_ERR_INVALID_OVERRIDES: spec(400, 'never'),
  MR_ERR_INVALID_ENCODE_REQUEST: spec(400, 'never'),
  MR_ERR_PROMPT_TOO_LONG: spec(400, 'never'),
  MR_ERR_BODY_TOO_LARGE: spec(413, 'never'),
  MR_ERR_HEADERS_TOO_LARGE: spec(431, 'never'),
  MR_ERR_UNSUPPORTED_MEDIA_TYPE: spec(415, 'never'),
  MR_ERR_METHOD_NOT_ALLOWED: spec(405, 'never'),
  MR_ERR_NOT_FOUND: spec(404, 'never'),
  MR_ERR_UNKNOWN_MODEL: spec(404, 'never'),
  MR_ERR_UNKNOWN_REQUEST: spec(404, 'never'),
  MR_ERR_DUPLICATE_FEEDBACK: spec(409, 'never'),
  MR_ERR_NO_PREVIOUS_POLICY: spec(409, 'never'),
  // An admin reload whose config, probe bundle or policy cannot be served: the running one stays.
  MR_ERR_RELOAD_REFUSED: spec(422, 'never'),
  // Admin learning routes while `learning.online` is off.
  MR_ERR_LEARNING_OFF: spec(409, 'never'),
  // Who asks.
  MR_ERR_UNAUTHORIZED: spec(401, 'never'),
  MR_ERR_FORBIDDEN: spec(403, 'never'),
  MR_ERR_BUDGET_EXCEEDED: spec(402, 'never'),
  MR_ERR_RATE_LIMITED: spec(429, 'later'),
  MR_ERR_AUTH_THROTTLED: spec(429, 'later'),
  // The router's own capacity and state.
  MR_ERR_ENCODER_QUEUE_FULL: spec(503, 'later'),
  MR_ERR_ENCODER_OVERLOADED: spec(503, 'later'),
  MR_ERR_ENCODER_DISPOSED: spec(503, 'later'),
  MR_ERR_SHUTTING_DOWN: spec(503, 'later'),
  MR_ERR_NOT_READY: spec(503, 'later'),
  MR_ERR_REQUEST_TIMEOUT: spec(504, 'default'),
  // Configuration: a retry cannot fix it, an operator can.
  MR_ERR_TIER_UNAVAILABLE: spec(503, 'never'),
  MR_ERR_NO_TIERS: spec(503, 'never'),
  MR_ERR_NO_TEXT_SCORER: spec(503, 'never'),
  MR_ERR_NO_HYBRID_HEAD: spec(503, 'never'),
  MR_ERR_NO_STEP_PROBE: spec(503, 'never'),
  MR_ERR_UPSTREAM_NO_CREDENTIALS: spec(503, 'never'),
  // Tiers and their upstreams (the status of some depends on the upstream's: see `httpStatusOf`).
  MR_ERR_UPSTREAM_UNAVAILABLE: spec(503, 'never'),
  MR_ERR_UPSTREAM_UNKNOWN_TIER: spec(404, 'never'),
  MR_ERR_UPSTREAM_REQUEST: spec(400, 'never'),
  MR_ERR_UPSTREAM_STATUS: spec(502, 'default'),
  MR_ERR_UPSTREAM_LOCAL: spec(502, 'default'),
  MR_ERR_UPSTREAM_EXHAUSTED: spec(502, 'default'),
  MR_ERR_UPSTREAM_TIMEOUT: spec(504, 'default'),
  MR_ERR_UPSTREAM_NETWORK: spec(502, 'default'),
  MR_ERR_UPSTREAM_PROTOCOL: spec(502, 'default'),
  MR_ERR_UPSTREAM_TRUNCATED: spec(502, 'default'),
  MR_ERR_UPSTREAM_ABORTED: spec(499, 'never'),
  // Bugs.
  MR_ERR_INTERNAL: spec(500, 'default'),
  // Offline commands (CLI, training): never answered over HTTP; a 500 there would be a bug.
  MR_ERR_BAD_OPTION: spec(500, 'default'),
  MR_ERR_SERVER_REQUEST: spec(500, 'default'),
  MR_ERR_SERVER_UNREACHABLE: spec(500, 'default'),
  MR_ERR_ADMIN_REQUEST: spec(500, 'default'),
  MR_ERR_NO_POLICY_HISTORY: spec(409, 'never'),
  MR_ERR_CHECKSUM: spec(500, 'default'),
  MR_ERR_MODEL_UNKNOWN: spec(500, 'default'),
  MR_ERR_MODEL_NOT_CACHED: spec(500, 'default'),
  MR_ERR_MODEL_SIZE: spec(500, 'default'),
  MR_ERR_DOWNLOAD_FAILED: spec(500, 'default'),
  MR_ERR_DOWNLOAD_SOURCE: spec(500, 'default'),
  MR_ERR_INVALID_FILE: spec(500, 'default'),
  MR_ERR_CONFIG_REFUSED: spec(500, 'default'),
  MR_ERR_FILE_CHANGING: spec(500, 'default'),
  MR_ERR_STATE_BUSY: spec(500, 'default'),
  MR_ERR_STATE_INVALID: spec(500, 'default'),
  MR_ERR_STATE_TOO_NEW: spec(500, 'default'),
  // The state file refused a write (disk full): a rollback that cannot be recorded is not made.
  MR_ERR_STATE_WRITE: spec(503, 'later'),
  MR_ERR_FILE_UNREADABLE: spec(500, 'default'),
  MR_ERR_NO_ENCODER_BINARY: spec(500, 'default'),
  MR_ERR_INVALID_METRIC_INPUT: spec(500, 'default'),
  MR_ERR_INVALID_PROBE_INPUT: spec(500, 'default'),
  MR_ERR_PROBE_ENCODER_MISMATCH: spec(500, 'default'),
  MR_ERR_ACTIVATION_STORE_MISMATCH: spec(500, 'default'),
  MR_ERR_ACTIVATION_STORE_LOCKED: spec(500, 'default'),
  MR_ERR_ACTIVATION_NOT_CACHED: spec(500, 'default'),
  MR_ERR_TRAINING_DATA: spec(500, 'default'),
} as const satisfies Record<string, ErrorCodeSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

/**
 * What a client should see for an upstream's HTTP status: its own faults keep their 4xx (a context
 * length error is the request's, not a bad gateway), a rate limit stays a 429, a timeout a 504; the
 * deployment's faults (its key, its model name) and upstream 5xx are ours to hide behind a 502.
 */
export function clientStatusForUpstream(upstream: number): number {
  if (upstream === 429) return 429;
  if (upstream === 408) return 504;
  if (upstream === 401 || upstream === 403 || upstream === 404) return 502;
  if (upstream >= 400 && upstream < 500) return upstream === 409 ? 502 : upstream;
  return 502;
}
