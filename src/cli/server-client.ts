import { z } from 'zod';
import { MechrouteError } from '../errors.js';
import { formatIssuesInline } from '../zod-issues.js';
import { CliOptionError } from './cli-flags.js';

const UrlSchema = z.url({ protocol: /^https?$/ });

/** A running server answered with an error status; 401/403 say which token variable to set. */
export class ServerRequestError extends MechrouteError {
  constructor(url: string, status: number, body: string, tokenEnv: readonly string[]) {
    const auth =
      status === 401 || status === 403
        ? `; set ${tokenEnv.join(' or ')} to a token the server accepts (server.auth_tokens_env)`
        : '';
    super('MR_ERR_SERVER_REQUEST', `${url} answered ${status}: ${body.slice(0, 500)}${auth}`);
  }
}

export class ServerUnreachableError extends MechrouteError {
  constructor(url: string, why: string) {
    super(
      'MR_ERR_SERVER_UNREACHABLE',
      `cannot reach ${url} (${why}); start the server with \`mechroute serve\` (or \`npm start\`), or point --url at it`,
    );
  }
}

export interface ServerRequest<S extends z.ZodType> {
  /** The server's base URL, as given by --url. */
  base: string;
  path: string;
  method: 'GET' | 'POST';
  schema: S;
  command: string;
  /** Bearer-token variables, in order of preference; the first that is set is sent. */
  tokenEnv: readonly string[];
  env?: NodeJS.ProcessEnv;
}

/** The reason under fetch's "fetch failed": connect ECONNREFUSED 127.0.0.1:8080, a DNS error, … */
function fetchFailure(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.message ?? cause?.code ?? (error as Error).message;
}

/** One JSON request to a running mechroute server (stats, admin), every failure a one-line error. */
export async function requestServer<S extends z.ZodType>(request: ServerRequest<S>): Promise<z.infer<S>> {
  const url = UrlSchema.safeParse(request.base);
  if (!url.success) throw new CliOptionError(request.command, `--url: ${formatIssuesInline(url.error)}`);
  const env = request.env ?? process.env;
  const token = request.tokenEnv.map((name) => env[name]).find((v) => v !== undefined && v !== '');
  const target = new URL(request.path, url.data).toString();
  let response: Response;
  try {
    response = await fetch(target, {
      method: request.method,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
  } catch (error) {
    throw new ServerUnreachableError(target, fetchFailure(error));
  }
  const text = await response.text();
  if (!response.ok) throw new ServerRequestError(target, response.status, text, request.tokenEnv);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new MechrouteError(
      'MR_ERR_SERVER_REQUEST',
      `${target} answered something that is not JSON; is --url a mechroute server?`,
    );
  }
  const parsed = request.schema.safeParse(body);
  if (!parsed.success) {
    throw new MechrouteError(
      'MR_ERR_SERVER_REQUEST',
      `${target}: unexpected answer (${formatIssuesInline(parsed.error)}); is --url a mechroute server of this version?`,
    );
  }
  return parsed.data;
}
