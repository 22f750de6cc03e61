import { z } from 'zod';
import { type AnswerMode, AnswerModeSchema } from '../config/modes-schema.js';
import { ApiError } from '../errors.js';
import { formatIssues } from '../zod-issues.js';

export const MODE_HEADER = 'x-mechroute-mode';
/** τ of live step mode for this request (tests and experiments; the config holds the default). */
export const STEP_THRESHOLD_HEADER = 'x-mechroute-step-threshold';

const DECIMAL = /^(?:\d+\.?\d*|\.\d+)$/;

const ModeHeadersSchema = z.object({
  mode: AnswerModeSchema.optional(),
  step_threshold: z
    .string()
    .regex(DECIMAL, 'expected a decimal number')
    .transform(Number)
    .pipe(z.number().min(0).max(1))
    .optional(),
});

export interface RequestMode {
  mode: AnswerMode;
  stepThreshold?: number;
}

type Headers = Readonly<Record<string, string | readonly string[] | undefined>>;

function single(headers: Headers, name: string): string | undefined {
  const raw = headers[name];
  if (raw === undefined) return undefined;
  if (typeof raw === 'string') return raw.trim();
  throw new ApiError('MR_ERR_BAD_REQUEST', `header ${name}: given ${raw.length} times, expected once`);
}

/** The answer mode a request asks for (`x-mechroute-mode`), else the config's; a bad header is a 400. */
export function requestMode(headers: Headers, fallback: AnswerMode): RequestMode {
  const mode = single(headers, MODE_HEADER);
  const threshold = single(headers, STEP_THRESHOLD_HEADER);
  const parsed = ModeHeadersSchema.safeParse({
    ...(mode === undefined ? {} : { mode: mode.toLowerCase() }),
    ...(threshold === undefined ? {} : { step_threshold: threshold }),
  });
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({
      ...i,
      path: [i.path[0] === 'mode' ? MODE_HEADER : STEP_THRESHOLD_HEADER],
    }));
    throw new ApiError('MR_ERR_BAD_REQUEST', `invalid headers:\n${formatIssues(issues)}`);
  }
  const chosen = parsed.data.mode ?? fallback;
  if (parsed.data.step_threshold !== undefined && chosen !== 'steps') {
    throw new ApiError('MR_ERR_BAD_REQUEST', `header ${STEP_THRESHOLD_HEADER} applies to mode "steps" only`);
  }
  return {
    mode: chosen,
    ...(parsed.data.step_threshold === undefined ? {} : { stepThreshold: parsed.data.step_threshold }),
  };
}
