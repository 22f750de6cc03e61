import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { type LoadedConfig, loadConfig } from '../config/config-loader.js';
import { watchPolicyFile } from '../config/policy-file.js';
import { buildApp } from './app.js';
import { createServices, type RouterServices, type ServiceOptions } from './services.js';

export interface StartOptions extends Pick<ServiceOptions, 'env' | 'fetch'> {
  configPath: string;
  /** Overrides the config's port (0 = any free port, as tests use). */
  port?: number;
  host?: string;
  /** pino level; 'silent' for tests. */
  logLevel?: string;
  /** Watch the policy file and reload on SIGHUP (default true). */
  watchPolicy?: boolean;
  /** Where log lines go (default stdout). */
  logStream?: { write(line: string): void };
}

export interface RunningServer {
  app: FastifyInstance;
  services: RouterServices;
  config: LoadedConfig;
  url: string;
  close(): Promise<void>;
}

/**
 * Creates the services, builds the app and listens; `close()` stops accepting, ends open streams,
 * then releases the tier pool and the encoder. Only this file knows about sockets and signals.
 */
export async function startServer(options: StartOptions): Promise<RunningServer> {
  const config = await loadConfig(options.configPath);
  // Credentials never reach the logs, whatever a handler or library passes to the logger.
  const logger = pino(
    {
      level: options.logLevel ?? 'info',
      redact: [
        'req.headers.authorization',
        'headers.authorization',
        '*.api_key',
        '*.apiKey',
        '*.authorization',
      ],
    },
    options.logStream ?? pino.destination(1),
  );
  const services = await createServices(config, {
    logger,
    ...(options.env ? { env: options.env } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  for (const problem of services.secrets.problems) logger.warn({ problem }, 'config problem');
  let app: FastifyInstance;
  try {
    app = await buildApp(services, { logger });
    await app.listen({ host: options.host ?? config.server.host, port: options.port ?? config.server.port });
  } catch (error) {
    await services.close();
    throw error;
  }
  const watcher =
    options.watchPolicy === false
      ? undefined
      : watchPolicyFile(config.policy_file ?? config.file, services.policies, logger, {
          onReload: (change) => {
            if (change.ok && change.changed)
              logger.info({ version: change.policy.version }, 'policy reloaded');
          },
        });
  const address = app.server.address();
  const url =
    typeof address === 'object' && address
      ? `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
      : String(address);
  logger.info({ url, tiers: services.routeTiers() }, 'mechroute serving');
  let closing: Promise<void> | undefined;
  return {
    app,
    services,
    config,
    url,
    close() {
      closing ??= (async () => {
        watcher?.close();
        await app.close();
        await services.close();
      })();
      return closing;
    },
  };
}
