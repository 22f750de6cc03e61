import type { Command } from 'commander';
import { z } from 'zod';
import { MechrouteError } from '../../errors.js';
import { formatIssuesInline } from '../../zod-issues.js';

/** The admin token's environment variables, in order; the token itself is never printed. */
export const ADMIN_TOKEN_ENV = ['MECHROUTE_ADMIN_TOKEN', 'MECHROUTE_TOKEN'] as const;

const UrlSchema = z.url({ protocol: /^https?$/ });

const RollbackResponseSchema = z.object({
  policy_version: z.string(),
  previous_version: z.string().nullable(),
});
const ShowResponseSchema = z.object({
  policy_version: z.string(),
  policy_kind: z.string(),
  history: z.array(z.string()),
  calibration: z.unknown().nullable(),
});

export class AdminRequestError extends MechrouteError {
  constructor(url: string, status: number, body: string) {
    super('MR_ERR_ADMIN_REQUEST', `${url} answered ${status}: ${body.slice(0, 500)}`);
  }
}

async function admin<S extends z.ZodType>(
  base: string,
  path: string,
  method: 'GET' | 'POST',
  schema: S,
  env: NodeJS.ProcessEnv,
): Promise<z.infer<S>> {
  const url = UrlSchema.safeParse(base);
  if (!url.success) throw new MechrouteError('MR_ERR_BAD_OPTION', `--url: ${formatIssuesInline(url.error)}`);
  const token = ADMIN_TOKEN_ENV.map((name) => env[name]).find((v) => v !== undefined && v !== '');
  const target = new URL(path, url.data).toString();
  let response: Response;
  try {
    response = await fetch(target, {
      method,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
  } catch (error) {
    throw new MechrouteError(
      'MR_ERR_ADMIN_REQUEST',
      `cannot reach ${target}: ${(error as Error).cause ?? (error as Error).message}`,
    );
  }
  const text = await response.text();
  if (!response.ok) throw new AdminRequestError(target, response.status, text);
  const parsed = schema.safeParse(JSON.parse(text));
  if (!parsed.success)
    throw new MechrouteError(
      'MR_ERR_ADMIN_REQUEST',
      `${target}: unexpected answer: ${formatIssuesInline(parsed.error)}`,
    );
  return parsed.data;
}

/** `mechroute policy …`: the running server's policy versions (admin endpoints, bearer token from env). */
export function registerPolicyCommand(program: Command, env: NodeJS.ProcessEnv = process.env): void {
  const policy = program
    .command('policy')
    .description(`a running server's routing policy (token from ${ADMIN_TOKEN_ENV.join(' or ')})`);
  const write = (command: Command, s: string) =>
    (command.configureOutput().writeOut ?? process.stdout.write.bind(process.stdout))(s);

  policy
    .command('show')
    .description('the running policy version and the versions kept for rollback')
    .option('--url <url>', 'the server', 'http://127.0.0.1:8080')
    .option('--json', 'print the raw JSON')
    .action(async (options: { url: string; json?: boolean }, command: Command) => {
      const shown = await admin(options.url, '/admin/policy', 'GET', ShowResponseSchema, env);
      write(
        command,
        options.json
          ? `${JSON.stringify(shown, null, 2)}\n`
          : `policy ${shown.policy_version} (${shown.policy_kind}); earlier versions kept: ${shown.history.join(', ') || 'none'}\n`,
      );
    });

  policy
    .command('rollback')
    .description('return the running server to its previous policy version, without a restart')
    .option('--url <url>', 'the server', 'http://127.0.0.1:8080')
    .option('--json', 'print the raw JSON')
    .action(async (options: { url: string; json?: boolean }, command: Command) => {
      const result = await admin(options.url, '/admin/policy/rollback', 'POST', RollbackResponseSchema, env);
      write(
        command,
        options.json
          ? `${JSON.stringify(result, null, 2)}\n`
          : `rolled back from ${result.previous_version ?? '?'} to policy version ${result.policy_version}\n`,
      );
    });
}
