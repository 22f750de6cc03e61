import { errnoReason, MechrouteError } from '../errors.js';

type SystemError = NodeJS.ErrnoException & { address?: string; port?: number };

const isSystemError = (error: unknown): error is SystemError =>
  error instanceof Error &&
  typeof (error as SystemError).code === 'string' &&
  typeof (error as SystemError).syscall === 'string';

/** A system error (a file, a socket) as one line that names the path or port and what to do. */
function systemErrorLine(error: SystemError): string {
  const code = error.code!;
  if (error.syscall === 'listen') {
    const where = `${error.address ?? ''}:${error.port ?? ''}`;
    return code === 'EADDRINUSE'
      ? `cannot listen on ${where}: the port is in use; pick another with --port or PORT=… [${code}]`
      : `cannot listen on ${where}: ${errnoReason(code) ?? error.message} [${code}]`;
  }
  // As Unix tools put it (`cat: /nope.txt: No such file or directory`): the path, then why.
  const reason = errnoReason(code) ?? error.message;
  return error.path ? `${error.path}: ${reason} [${code}]` : `${error.syscall} failed: ${reason} [${code}]`;
}

/**
 * The text printed for an error that ended a command. Known failures (mechroute's coded errors, a missing
 * or unreadable file, a busy port) print one line, their code in brackets; anything else is a bug and keeps
 * its stack. `debug` (MECHROUTE_DEBUG=1) prints the stack of known failures too.
 */
export function describeFailure(error: unknown, debug = false): string {
  const stack = error instanceof Error && debug ? `\n${error.stack ?? ''}` : '';
  if (error instanceof MechrouteError) {
    return `mechroute: ${error.message} [${error.code}]${stack}\n`;
  }
  if (isSystemError(error)) return `mechroute: ${systemErrorLine(error)}${stack}\n`;
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return `mechroute: unexpected error (a bug in mechroute; please report it with the command you ran):\n${detail}\n`;
}
