import type { Command } from 'commander';
import { z } from 'zod';
import { requestServer } from '../server-client.js';

/** The admin token's environment variables, in order; the token itself is never printed. */
export const ADMIN_TOKEN_ENV = ['MECHROUTE_ADMIN_TOKEN', 'MECHROUTE_TOKEN'] as const;

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

const ReloadResponseSchema = z.object({
  tiers: z.array(z.string()),
  added: z.array(z.string()),
  removed: z.array(z.string()),
  replaced: z.array(z.string()),
  draining: z.array(z.object({ id: z.string(), in_flight: z.number() })),
  probes: z.string(),
  policy_version: z.string(),
  restart_required: z.array(z.string()),
});
const LearningResponseSchema = z.object({
  online: z.literal(true),
  tiers: z.record(z.string(), z.object({ norm: z.number(), updates: z.number() })),
});

/** One admin endpoint as a subcommand: `--url`, `--json` (the raw answer) or a line of text. */
interface AdminCommand<S extends z.ZodType> {
  name: string;
  description: string;
  path: string;
  method: 'GET' | 'POST';
  schema: S;
  text: (answer: z.infer<S>) => string;
}

function addAdminCommand<S extends z.ZodType>(
  parent: Command,
  env: NodeJS.ProcessEnv,
  spec: AdminCommand<S>,
) {
  parent
    .command(spec.name)
    .description(spec.description)
    .option('--url <url>', 'the server', 'http://127.0.0.1:8080')
    .option('--json', 'print the raw JSON')
    .action(async (options: { url: string; json?: boolean }, command: Command) => {
      const answer = await requestServer({
        base: options.url,
        env,
        command: 'policy',
        tokenEnv: ADMIN_TOKEN_ENV,
        path: spec.path,
        method: spec.method,
        schema: spec.schema,
      });
      const write = command.configureOutput().writeOut ?? process.stdout.write.bind(process.stdout);
      write(options.json ? `${JSON.stringify(answer, null, 2)}\n` : `${spec.text(answer)}\n`);
    });
}

const list = (ids: readonly string[]) => ids.join(', ') || 'none';

/** `mechroute policy …`: the running server's policy versions (admin endpoints, bearer token from env). */
export function registerPolicyCommand(program: Command, env: NodeJS.ProcessEnv = process.env): void {
  const policy = program
    .command('policy')
    .description(`a running server's routing policy (token from ${ADMIN_TOKEN_ENV.join(' or ')})`);

  addAdminCommand(policy, env, {
    name: 'show',
    description: 'the running policy version and the versions kept for rollback',
    path: '/admin/policy',
    method: 'GET',
    schema: ShowResponseSchema,
    text: (shown) =>
      `policy ${shown.policy_version} (${shown.policy_kind}); earlier versions kept: ${list(shown.history)}`,
  });

  addAdminCommand(policy, env, {
    name: 'rollback',
    description: 'return the running server to its previous policy version, without a restart',
    path: '/admin/policy/rollback',
    method: 'POST',
    schema: RollbackResponseSchema,
    text: (result) =>
      `rolled back from ${result.previous_version ?? '?'} to policy version ${result.policy_version}`,
  });

  addAdminCommand(policy, env, {
    name: 'reload',
    description:
      "reload the server's config file (tiers, probe bundle, policy) without a restart; refused as a whole if invalid",
    path: '/admin/reload',
    method: 'POST',
    schema: ReloadResponseSchema,
    text: (r) =>
      `reloaded: tiers ${list(r.tiers)} (added ${list(r.added)}, removed ${list(r.removed)}, ` +
      `draining ${list(r.draining.map((d) => `${d.id} (${d.in_flight} in flight)`))}); ` +
      `policy ${r.policy_version}; probes ${r.probes}` +
      (r.restart_required.length ? `; needs a restart to apply: ${list(r.restart_required)}` : ''),
  });

  addAdminCommand(policy, env, {
    name: 'reset-learning',
    description: "set online learning's corrections back to 0 (snapshots per policy version are kept)",
    path: '/admin/learning/reset',
    method: 'POST',
    schema: LearningResponseSchema,
    text: (r) => `online learning reset: ${Object.keys(r.tiers).length} tier corrections at 0`,
  });
}
