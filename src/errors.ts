import type { ErrorCode } from './error-codes.js';

/**
 * One small error class per failure, each with a stable `MR_ERR_*` code (registered with its HTTP
 * status and retry advice in `error-codes.ts`) so the CLI, the server and the logs can tell failures
 * apart without parsing messages.
 */
export class MechrouteError extends Error {
  readonly code: ErrorCode;
  /** How long a retry should wait, where that is known (rate limits, overload, cooling-down tiers). */
  readonly retryAfterMs: number | undefined;
  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; retryAfterMs?: number | undefined },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** A refusal of the request by the API itself (bad field, unknown model, auth): its code says which. */
export class ApiError extends MechrouteError {}

export class ChecksumMismatchError extends MechrouteError {
  constructor(file: string, expected: string, actual: string) {
    super(
      'MR_ERR_CHECKSUM',
      `sha256 mismatch for ${file}: expected ${expected}, got ${actual}; the file was removed`,
    );
  }
}

export class ModelNotFoundError extends MechrouteError {
  constructor(name: string, known: readonly string[]) {
    super('MR_ERR_MODEL_UNKNOWN', `unknown model "${name}"; known models: ${known.join(', ') || '(none)'}`);
  }
}

export class ModelNotCachedError extends MechrouteError {
  constructor(name: string, path: string) {
    super(
      'MR_ERR_MODEL_NOT_CACHED',
      `model "${name}" is not downloaded (expected at ${path}); run \`mechroute models pull ${name}\``,
    );
  }
}

export class AllSourcesFailedError extends MechrouteError {
  constructor(name: string, failures: readonly string[]) {
    super(
      'MR_ERR_DOWNLOAD_FAILED',
      `could not download model "${name}" from any source:\n  - ${failures.join('\n  - ')}`,
    );
  }
}

export class InvalidFileError extends MechrouteError {
  constructor(what: string, file: string, details: string) {
    super('MR_ERR_INVALID_FILE', `invalid ${what} ${file}:\n${details}`);
  }
}

/** A config the server refuses to start with (not invalid by schema, but unsafe or unusable here). */
export class ConfigRefusedError extends MechrouteError {
  constructor(file: string, problems: readonly string[]) {
    super('MR_ERR_CONFIG_REFUSED', `refusing to start with ${file}:\n  - ${problems.join('\n  - ')}`);
  }
}

/** A config reload that cannot be served; the running config, probes, policy and tiers stay. */
export class ReloadRefusedError extends MechrouteError {
  constructor(file: string, reason: string, cause?: unknown) {
    super('MR_ERR_RELOAD_REFUSED', `config reload of ${file} refused, the running config stays: ${reason}`, {
      cause,
    });
  }
}

export class NoEncoderBinaryError extends MechrouteError {
  constructor(variant: string, path: string, cause?: unknown) {
    super(
      'MR_ERR_NO_ENCODER_BINARY',
      `the activation addon for the "${variant}" backend is missing or does not load (${path}); ` +
        'build it with `npm run build:native` (needs g++ and git, no network)',
      { cause },
    );
  }
}

export class EncoderDisposedError extends MechrouteError {
  constructor() {
    super('MR_ERR_ENCODER_DISPOSED', 'the encoder has been disposed');
  }
}

export class EncoderQueueFullError extends MechrouteError {
  constructor(limit: number, retryAfterMs?: number) {
    super('MR_ERR_ENCODER_QUEUE_FULL', `the encoder queue is full (${limit} prompts waiting); retry later`, {
      retryAfterMs: retryAfterMs ?? 1000,
    });
  }
}

/** Admission control: the queued work would not clear in time (see `EncoderHostOptions.maxQueueWaitMs`). */
export class EncoderOverloadedError extends MechrouteError {
  constructor(why: string, retryAfterMs: number) {
    super('MR_ERR_ENCODER_OVERLOADED', `the router is overloaded: ${why}; retry later`, {
      retryAfterMs: Math.max(1000, retryAfterMs),
    });
  }
}

export class PromptTooLongError extends MechrouteError {
  /** `tokens`: the count, or a bound ("more than 2048") when counting them all was not needed. */
  constructor(tokens: number | string, limit: number) {
    super(
      'MR_ERR_PROMPT_TOO_LONG',
      `the prompt has ${tokens} tokens but the encoder context holds ${limit}; ` +
        'use overflow: "truncate-left" to keep the last tokens',
    );
  }
}

export class InvalidEncodeRequestError extends MechrouteError {
  constructor(message: string) {
    super('MR_ERR_INVALID_ENCODE_REQUEST', message);
  }
}

export class InvalidMetricInputError extends MechrouteError {
  constructor(metric: string, problem: string) {
    super('MR_ERR_INVALID_METRIC_INPUT', `${metric}: ${problem}`);
  }
}

/** What a system error code means, in words a user can act on; undefined for codes not listed. */
export function errnoReason(code: string | undefined): string | undefined {
  const reasons: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EISDIR: 'it is a directory',
    ENOTDIR: 'a part of the path is not a directory',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOSPC: 'no space left on the device',
    EROFS: 'the file system is read-only',
    EEXIST: 'it already exists',
    EMFILE: 'too many open files',
  };
  return code === undefined ? undefined : reasons[code];
}

export class FileUnreadableError extends MechrouteError {
  constructor(file: string, cause: unknown) {
    const why = errnoReason((cause as NodeJS.ErrnoException | undefined)?.code) ?? String(cause);
    super('MR_ERR_FILE_UNREADABLE', `cannot read ${file}: ${why}`, { cause });
  }
}

export class FileChangedWhileReadingError extends MechrouteError {
  constructor(file: string) {
    super('MR_ERR_FILE_CHANGING', `${file} changed while it was being read (still being written?); not used`);
  }
}

export class InvalidProbeInputError extends MechrouteError {
  constructor(problem: string) {
    super('MR_ERR_INVALID_PROBE_INPUT', problem);
  }
}

export class ProbeEncoderMismatchError extends MechrouteError {
  constructor(
    file: string,
    bundle: { name: string; sha256: string },
    encoder: { name?: string | undefined; sha256: string },
  ) {
    super(
      'MR_ERR_PROBE_ENCODER_MISMATCH',
      `probe bundle ${file} was trained on encoder "${bundle.name}" (sha256 ${bundle.sha256}) but the loaded ` +
        `encoder is ${encoder.name ? `"${encoder.name}" ` : ''}(sha256 ${encoder.sha256}); activations of a ` +
        'different model mean nothing to these probes: retrain with `mechroute train` or load the matching encoder',
    );
  }
}

export class ActivationStoreMismatchError extends MechrouteError {
  constructor(dir: string, problems: readonly string[]) {
    super(
      'MR_ERR_ACTIVATION_STORE_MISMATCH',
      `the activation store ${dir} was written for another encoder or setting:\n  - ${problems.join('\n  - ')}\n` +
        'use the encoder it was written with, or another store directory',
    );
  }
}

export class ActivationStoreLockedError extends MechrouteError {
  constructor(lockFile: string, pid: number | undefined) {
    super(
      'MR_ERR_ACTIVATION_STORE_LOCKED',
      `another process${pid === undefined ? '' : ` (pid ${pid})`} is writing to this activation store ` +
        `(${lockFile}); wait for it to finish or stop it`,
    );
  }
}

export class ActivationNotCachedError extends MechrouteError {
  constructor(dir: string, hash: string) {
    super(
      'MR_ERR_ACTIVATION_NOT_CACHED',
      `no activations for prompt ${hash} in ${dir}; run \`mechroute extract --traces FILE\` on the traces first`,
    );
  }
}

export class ModelSizeMismatchError extends MechrouteError {
  constructor(file: string, expected: number, actual: number) {
    super(
      'MR_ERR_MODEL_SIZE',
      `size mismatch for ${file}: expected ${expected} bytes, got ${actual}; the file was removed`,
    );
  }
}

export class DownloadSourceError extends MechrouteError {
  constructor(what: string, why: string, options?: { cause?: unknown }) {
    super('MR_ERR_DOWNLOAD_SOURCE', `${what}: ${why}`, options);
  }
}

export class TierUnavailableError extends MechrouteError {
  /** `retryAfterMs`: when the tier is known to be back (its breakers' cooldown). */
  constructor(message: string, retryAfterMs?: number) {
    super('MR_ERR_TIER_UNAVAILABLE', message, { retryAfterMs });
  }
}

export class BudgetExceededError extends MechrouteError {
  constructor(message: string) {
    super('MR_ERR_BUDGET_EXCEEDED', message);
  }
}

export class NoTiersError extends MechrouteError {
  constructor(message: string) {
    super('MR_ERR_NO_TIERS', message);
  }
}

export class InvalidOverridesError extends MechrouteError {
  readonly errors: readonly string[];
  constructor(errors: readonly string[]) {
    super('MR_ERR_INVALID_OVERRIDES', `invalid routing overrides:\n  - ${errors.join('\n  - ')}`);
    this.errors = errors;
  }
}

export class TrainingDataError extends MechrouteError {
  constructor(problem: string) {
    super('MR_ERR_TRAINING_DATA', problem);
  }
}
