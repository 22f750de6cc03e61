import type { z } from 'zod';
import { MechrouteError } from '../errors.js';

/**
 * A command-line flag a command cannot use. Its own class (not a file error): the fix is on the command
 * line, so the message names the flag and points at the command's --help.
 */
export class CliOptionError extends MechrouteError {
  constructor(command: string, problem: string) {
    super('MR_ERR_BAD_OPTION', `${command}: ${problem} (see \`mechroute ${command} --help\`)`);
  }
}

/** Commander's camelCase option key back to the flag the user typed: latencySamples → --latency-samples. */
export const flagName = (key: PropertyKey): string =>
  `--${String(key).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** Validates a command's parsed options with its zod schema; every problem is named by its flag. */
export function parseFlags<S extends z.ZodType>(schema: S, raw: unknown, command: string): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const [key, ...rest] = issue.path;
    // Some schemas already name the flag in their message ("--taus: each τ is in [0, 1]").
    if (key === undefined || issue.message.startsWith('--')) return issue.message;
    const given = (raw as Record<PropertyKey, unknown> | undefined)?.[key];
    // zod's own words ("Invalid input: expected number, received NaN") hide what was typed.
    const message =
      issue.code !== 'invalid_type' || rest.length > 0
        ? issue.message
        : given === undefined
          ? 'is required'
          : `expected ${issue.expected === 'number' ? 'a number' : issue.expected}, got ${JSON.stringify(given)}`;
    return `${flagName(key)}${rest.map((p) => `[${String(p)}]`).join('')}: ${message}`;
  });
  throw new CliOptionError(command, problems.join('; '));
}
