import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Trace } from '../src/traces/trace-schema.js';
import { extractCode, type Grade } from './grading.js';

/**
 * A user's grading command (for code answers, MBPP style), run once per answer. The contract, also in
 * the README's `mechroute label` section:
 *
 * - It is run by `/bin/sh -c` as given, in the directory mechroute was started in; nothing is added
 *   to its command line.
 * - stdin: one JSON object (`GradeCommandInput`), then end of file.
 * - env: `MECHROUTE_GRADE_TIER`, `MECHROUTE_GRADE_TRACE_ID`, `MECHROUTE_GRADE_ANSWER_FILE` and
 *   `MECHROUTE_GRADE_CODE_FILE` (the answer and its code, in a fresh folder removed afterwards), and only
 *   the basic variables of `PASSED_ENV` from mechroute's own environment: the grader runs code a model
 *   wrote, so the API keys a tier needs are not handed to it.
 * - exit status: 0 pass, 1 fail, 2 cannot grade. Any other status, a signal, a command that cannot
 *   start, or one still running after the timeout (killed with its process group) is ungradable too,
 *   with the reason recorded. A grader running untrusted code should bound it itself and exit 1 when
 *   the code hangs: the timeout here guards against a broken grader, not a slow answer.
 * - stdout: its last non-empty line (up to 200 characters) is recorded as the grader's note; on an
 *   ungradable exit the tail of stderr is recorded as the reason.
 */
export interface GradeCommandInput {
  /** The version of this contract. */
  version: 1;
  tier: string;
  /** The trace as read from --traces (reference fields, tests and all). */
  trace: Trace;
  /** The tier's whole answer. */
  answer: string;
  /** The first fenced code block of the answer, else the whole answer. */
  code: string;
  reference_answer: string | null;
  /** Why the tier stopped (`length`: cut off at --max-tokens). */
  finish_reason: string;
}

export interface GradeCommand {
  /** The command line, run by /bin/sh. */
  command: string;
  timeoutMs: number;
}

/** Variables a grader gets from mechroute's environment; everything else (credentials above all) stays out. */
export const PASSED_ENV = ['PATH', 'HOME', 'USER', 'LANG', 'LC_ALL', 'TMPDIR', 'TZ', 'SYSTEMROOT'] as const;

const NOTE_CHARS = 200;
const TAIL_BYTES = 4096;

export const EXIT_PASS = 0;
export const EXIT_FAIL = 1;
export const EXIT_UNGRADABLE = 2;

/** The last `TAIL_BYTES` of a stream, so a grader that prints megabytes cannot fill memory. */
function tailCollector() {
  let text = '';
  return {
    push(chunk: Buffer) {
      text = (text + chunk.toString('utf8')).slice(-TAIL_BYTES);
    },
    lastLine: () =>
      text
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.length > 0)
        .at(-1)
        ?.slice(0, NOTE_CHARS),
  };
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  spawnError?: string;
  stdout?: string;
  stderr?: string;
}

function run(grader: GradeCommand, input: string, env: NodeJS.ProcessEnv, signal?: AbortSignal) {
  return new Promise<Exit>((resolve) => {
    // Its own process group, so a timeout kills what the shell started too, not only the shell.
    const child = spawn('/bin/sh', ['-c', grader.command], { env, detached: true, stdio: 'pipe' });
    const stdout = tailCollector();
    const stderr = tailCollector();
    let timedOut = false;
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, grader.timeoutMs);
    signal?.addEventListener('abort', killGroup, { once: true });
    child.stdout.on('data', stdout.push);
    child.stderr.on('data', stderr.push);
    // A grader that does not read its stdin closes the pipe early; that is its right, not an error.
    child.stdin.on('error', () => {});
    child.stdin.end(input);
    const done = (exit: Omit<Exit, 'stdout' | 'stderr'>) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', killGroup);
      const out = stdout.lastLine();
      const err = stderr.lastLine();
      resolve({ ...exit, ...(out ? { stdout: out } : {}), ...(err ? { stderr: err } : {}) });
    };
    child.on('error', (error) => done({ code: null, signal: null, timedOut, spawnError: error.message }));
    child.on('close', (code, sig) => done({ code, signal: sig, timedOut }));
  });
}

/** What an exit means, as a grade (the contract above). */
export function gradeOfExit(exit: Exit, timeoutMs: number): Grade {
  const note = exit.stdout;
  const base = { method: 'command' as const, ...(note ? { how: note } : {}) };
  if (exit.timedOut) {
    return { ...base, verdict: 'ungradable', reason: `grading command timed out after ${timeoutMs} ms` };
  }
  if (exit.spawnError) {
    return { ...base, verdict: 'ungradable', reason: `grading command did not start: ${exit.spawnError}` };
  }
  if (exit.code === EXIT_PASS) return { ...base, verdict: 'pass' };
  if (exit.code === EXIT_FAIL) return { ...base, verdict: 'fail' };
  const said = exit.stderr ?? note;
  const status = exit.code === null ? `was killed by ${exit.signal}` : `exited ${exit.code}`;
  return {
    ...base,
    verdict: 'ungradable',
    reason: `grading command ${status}${exit.code === EXIT_UNGRADABLE ? ' (cannot grade)' : ''}${said ? `: ${said}` : ''}`,
  };
}

/** Runs the grading command on one answer (the contract above) and reads its verdict. */
export async function gradeWithCommand(
  grader: GradeCommand,
  input: Omit<GradeCommandInput, 'version' | 'code'>,
  signal?: AbortSignal,
): Promise<Grade> {
  const code = extractCode(input.answer);
  const dir = await mkdtemp(join(tmpdir(), 'mechroute-grade-'));
  try {
    const answerFile = join(dir, 'answer.txt');
    const codeFile = join(dir, 'code.txt');
    await Promise.all([writeFile(answerFile, input.answer), writeFile(codeFile, code)]);
    const env: NodeJS.ProcessEnv = {};
    for (const name of PASSED_ENV) if (process.env[name] !== undefined) env[name] = process.env[name];
    Object.assign(env, {
      MECHROUTE_GRADE_TIER: input.tier,
      MECHROUTE_GRADE_TRACE_ID: input.trace.id,
      MECHROUTE_GRADE_ANSWER_FILE: answerFile,
      MECHROUTE_GRADE_CODE_FILE: codeFile,
    });
    const payload: GradeCommandInput = { version: 1, ...input, code };
    const exit = await run(grader, `${JSON.stringify(payload)}\n`, env, signal);
    return gradeOfExit(exit, grader.timeoutMs);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
