import type { Command } from 'commander';
import { DEFAULT_CONFIG_PATH } from '../../config/config-loader.js';
import { probedTiers } from '../../probes/probe-bundle.js';
import { CliOptionError } from '../cli-flags.js';
import { startupSummary } from '../startup-summary.js';

interface ServeOptions {
  config: string;
  port?: string;
  host?: string;
  logLevel: string;
}

/**
 * The port to listen on: --port, else MECHROUTE_PORT, else PORT (what container platforms set), else
 * undefined for the config's.
 */
export function listenPort(flag: string | undefined, env: NodeJS.ProcessEnv): number | undefined {
  const source = (
    [
      ['--port', flag],
      ['MECHROUTE_PORT', env.MECHROUTE_PORT],
      ['PORT', env.PORT],
    ] as const
  ).find(([, value]) => value !== undefined && value.trim() !== '');
  if (!source) return undefined;
  const [from, value] = source;
  const port = Number(value);
  if (!/^\s*\d+\s*$/.test(value!) || port >= 65_536) {
    throw new CliOptionError('serve', `${from} must be a port number 0..65535, got "${value}"`);
  }
  return port;
}

/** `mechroute serve`: the routing server. */
export function registerServeCommand(program: Command, env: NodeJS.ProcessEnv = process.env): void {
  program
    .command('serve')
    .description('serve OpenAI-compatible routing over HTTP (see config/default.yaml)')
    .option('--config <file>', 'YAML or JSON config', DEFAULT_CONFIG_PATH)
    .option('--port <n>', "override the config's port (or set MECHROUTE_PORT or PORT)")
    .option('--host <address>', "override the config's host")
    .option('--log-level <level>', 'pino level: trace, debug, info, warn, error', 'info')
    .action(async (options: ServeOptions) => {
      const port = listenPort(options.port, env);
      // Loaded here: the server pulls in the encoder, the tiers and fastify, which other commands skip.
      const { startServer } = await import('../../server/server.js');
      const server = await startServer({
        configPath: options.config,
        logLevel: options.logLevel,
        ...(port === undefined ? {} : { port }),
        ...(options.host ? { host: options.host } : {}),
      });
      // The JSON log goes to stdout; a person starting the server reads this one line on stderr.
      process.stderr.write(
        startupSummary(
          server.url,
          server.services.routeTiers(),
          server.config.tiers,
          probedTiers(server.services.bundle()),
        ),
      );
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
}
