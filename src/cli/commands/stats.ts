import type { Command } from 'commander';
import { z } from 'zod';
import { requestServer } from '../server-client.js';

const rate = z.number().nullable();
const OutcomeGroupSchema = z.looseObject({
  feedback: z.number(),
  cost_per_correct_usd: rate,
  success_rate: rate,
});
/** The fields of `GET /v1/stats` this command prints; others pass through to --json untouched. */
const StatsSchema = z.looseObject({
  policy_version: z.string(),
  requests: z.number(),
  escalation_rate: z.number(),
  fallback_rate: z.number(),
  tiers: z.record(
    z.string(),
    z.looseObject({
      requests: z.number(),
      cost_usd: z.number(),
      feedback: z.number(),
      success_rate: rate,
      cost_per_success_usd: rate,
      mean_latency_ms: rate,
    }),
  ),
  overall: z.looseObject({ feedback: z.number(), cost_per_success_usd: rate }),
  policies: z.record(z.string(), OutcomeGroupSchema).optional(),
  task_classes: z.record(z.string(), OutcomeGroupSchema).optional(),
});
type Stats = z.infer<typeof StatsSchema>;

const money = (v: number | null) => (v === null ? '      -' : `$${v.toFixed(6)}`);
const pct = (v: number | null) => (v === null ? '    -' : `${(v * 100).toFixed(1)} %`);

function renderStats(stats: Stats): string {
  const lines = [
    `policy ${stats.policy_version}: ${stats.requests} requests, escalation rate ${pct(stats.escalation_rate)}, ` +
      `fallback rate ${pct(stats.fallback_rate)}`,
    'tier                          requests   cost USD   feedback  success  cost/success  mean ms',
  ];
  for (const [tier, s] of Object.entries(stats.tiers)) {
    lines.push(
      `${tier.padEnd(28)} ${String(s.requests).padStart(9)} ${s.cost_usd.toFixed(6).padStart(10)} ` +
        `${String(s.feedback).padStart(9)} ${pct(s.success_rate).padStart(8)} ${money(s.cost_per_success_usd).padStart(13)} ` +
        `${s.mean_latency_ms === null ? '-' : s.mean_latency_ms.toFixed(0).padStart(8)}`,
    );
  }
  lines.push(
    `overall cost per success: ${money(stats.overall.cost_per_success_usd)} over ${stats.overall.feedback} rated`,
  );
  // Held against what `mechroute calibrate` promised for that version (see `mechroute drift`).
  for (const [label, groups] of [
    ['policy version', stats.policies ?? {}],
    ['task class', stats.task_classes ?? {}],
  ] as const) {
    for (const [name, g] of Object.entries(groups)) {
      lines.push(
        `${label} ${name}: cost per correct ${money(g.cost_per_correct_usd)}, success ${pct(g.success_rate)} over ${g.feedback} rated`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

/** `mechroute stats`: a running server's cost per successful outcome, per tier. */
export function registerStatsCommand(program: Command, env: NodeJS.ProcessEnv = process.env): void {
  program
    .command('stats')
    .description('per-tier cost per successful outcome, escalation and fallback rates of a running server')
    .option('--url <url>', 'the server', 'http://127.0.0.1:8080')
    .option('--json', 'print the raw JSON')
    .action(async (options: { url: string; json?: boolean }, command: Command) => {
      const stats = await requestServer({
        base: options.url,
        path: '/v1/stats',
        method: 'GET',
        schema: StatsSchema,
        command: 'stats',
        tokenEnv: ['MECHROUTE_TOKEN'],
        env,
      });
      const write = command.configureOutput().writeOut ?? process.stdout.write.bind(process.stdout);
      write(options.json ? `${JSON.stringify(stats, null, 2)}\n` : renderStats(stats));
    });
}
