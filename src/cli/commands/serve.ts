import type { Command } from 'commander';
import { DEFAULT_CONFIG_PATH } from '../../config/config-loader.js';
import { InvalidEncodeRequestError } from '../../errors.js';

interface ServeOptions {
  config: string;
  port?: string;
  host?: string;
  logLevel: string;
}

interface StatsOptions {
  url: string;
  json?: boolean;
}

/** `mechroute serve` and `mechroute stats`: the routing server and a look at a running one. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('serve OpenAI-compatible routing over HTTP (see config/default.yaml)')
    .option('--config <file>', 'YAML or JSON config', DEFAULT_CONFIG_PATH)
    .option('--port <n>', "override the config's port")
    .option('--host <address>', "override the config's host")
    .option('--log-level <level>', 'pino level: trace, debug, info, warn, error', 'info')
    .action(async (options: ServeOptions) => {
      const port = options.port === undefined ? undefined : Number(options.port);
      if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port < 65_536)) {
        throw new InvalidEncodeRequestError(`--port must be 0..65535, got ${options.port}`);
      }
      // Loaded here: the server pulls in the encoder, the tiers and fastify, which other commands skip.
      const { startServer } = await import('../../server/server.js');
      const server = await startServer({
        configPath: options.config,
        logLevel: options.logLevel,
        ...(port === undefined ? {} : { port }),
        ...(options.host ? { host: options.host } : {}),
      });
      const stop = (signal: string) => {
        server.app.log.info({ signal }, 'shutting down');
        server.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });

  program
    .command('stats')
    .description('per-tier cost per successful outcome, escalation and fallback rates of a running server')
    .option('--url <url>', 'the server', 'http://127.0.0.1:8080')
    .option('--json', 'print the raw JSON')
    .action(async (options: StatsOptions, command: Command) => {
      const write = (s: string) =>
        (command.configureOutput().writeOut ?? process.stdout.write.bind(process.stdout))(s);
      const token = process.env.MECHROUTE_TOKEN;
      const response = await fetch(new URL('/v1/stats', options.url), {
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      if (!response.ok)
        throw new Error(`${options.url} answered ${response.status}: ${await response.text()}`);
      const stats = (await response.json()) as import('../../server/telemetry.js').StatsSnapshot & {
        policy_version: string;
      };
      if (options.json) {
        write(`${JSON.stringify(stats, null, 2)}\n`);
        return;
      }
      const money = (v: number | null) => (v === null ? '      -' : `$${v.toFixed(6)}`);
      const pct = (v: number | null) => (v === null ? '    -' : `${(v * 100).toFixed(1)} %`);
      write(
        `policy ${stats.policy_version}: ${stats.requests} requests, escalation rate ${pct(stats.escalation_rate)}, ` +
          `fallback rate ${pct(stats.fallback_rate)}\n`,
      );
      write('tier                          requests   cost USD   feedback  success  cost/success  mean ms\n');
      for (const [tier, s] of Object.entries(stats.tiers)) {
        write(
          `${tier.padEnd(28)} ${String(s.requests).padStart(9)} ${s.cost_usd.toFixed(6).padStart(10)} ` +
            `${String(s.feedback).padStart(9)} ${pct(s.success_rate).padStart(8)} ${money(s.cost_per_success_usd).padStart(13)} ` +
            `${s.mean_latency_ms === null ? '-' : s.mean_latency_ms.toFixed(0).padStart(8)}\n`,
        );
      }
      write(
        `overall cost per success: ${money(stats.overall.cost_per_success_usd)} over ${stats.overall.feedback} rated\n`,
      );
      // Held against what `mechroute calibrate` promised for that version (see `mechroute drift`).
      for (const [label, groups] of [
        ['policy version', stats.policies ?? {}],
        ['task class', stats.task_classes ?? {}],
      ] as const) {
        for (const [name, g] of Object.entries(groups)) {
          write(
            `${label} ${name}: cost per correct ${money(g.cost_per_correct_usd)}, success ${pct(g.success_rate)} over ${g.feedback} rated\n`,
          );
        }
      }
    });
}
