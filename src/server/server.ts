import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import {
  type LoadedConfig,
  loadConfig,
  type ResolvedSecrets,
  resolveSecrets,
} from '../config/config-loader.js';
import { watchPolicyFile } from '../config/policy-file.js';
import { ConfigRefusedError } from '../errors.js';
import { isLoopback } from '../loopback.js';
import { setupTracing } from '../tracing.js';
import { buildApp } from './app.js';
import { type InflightRequests, ShuttingDownError } from './inflight.js';
import { createServices, type RouterServices, type ServiceOptions } from './services.js';

export interface StartOptions extends Pick<ServiceOptions, 'env' | 'fetch'> {
  configPath: string;
  /** Overrides the config's port (0 = any free port, as tests use). */
  port?: number;
  host?: string;
  /** pino level; 'silent' for tests. */
  logLevel?: string;
  /** Watch the policy file, and reload the whole config on SIGHUP (default true). */
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
  const host = options.host ?? config.server.host;
  refuseUnsafeStart(config, host, resolveSecrets(config, options.env ?? process.env));
  const services = await createServices(config, {
    logger,
    ...(options.env ? { env: options.env } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  let app: FastifyInstance;
  let inflight: InflightRequests;
  try {
    ({ app, inflight } = await buildApp(services, { logger }));
    await app.listen({ host, port: options.port ?? config.server.port });
  } catch (error) {
    await services.close();
    throw error;
  }
  // From here the app owns the services: closing it releases them.
  const tracing = setupTracing(options.env ?? process.env);
  const policyPath = (c: LoadedConfig) => c.policy_file ?? c.file;
  const watchPolicy = (file: string) =>
    watchPolicyFile(file, services.policies, logger, {
      // SIGHUP reloads the whole config (tiers, probes, policy): see below.
      sighup: false,
      onReload: (change) => {
        if (change.ok && change.changed) logger.info({ version: change.policy.version }, 'policy reloaded');
      },
    });
  let watched = policyPath(config);
  let watcher = options.watchPolicy === false ? undefined : watchPolicy(watched);
  // A reloaded config may keep its policy in another file: from then on, edits to that file count.
  const stopFollowing = services.onReload((next) => {
    if (!watcher || policyPath(next) === watched) return;
    watcher.close();
    watched = policyPath(next);
    watcher = watchPolicy(watched);
    logger.info({ file: watched }, 'watching the policy file the reloaded config names');
  });
  // A refused reload is logged by the reloader and changes nothing.
  const onHangup = () => void services.reload('SIGHUP').catch(() => undefined);
  if (options.watchPolicy !== false) process.on('SIGHUP', onHangup);
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
      // Graceful: refuse new requests, let those in flight finish for server.shutdown_drain_ms, then
      // cancel what is left (clients get MR_ERR_SHUTTING_DOWN, streams an error event), then release
      // the tiers and the encoder.
      closing ??= (async () => {
        stopFollowing();
        watcher?.close();
        process.off('SIGHUP', onHangup);
        inflight.closing = true;
        const closed = app.close();
        // A keep-alive connection busy when close began is not closed by it once its answer is out, and
        // would hold the server for keepAliveTimeout (72 s): close each as soon as it is idle.
        const closeIdle = setInterval(() => app.server.closeIdleConnections(), 100);
        try {
          const drainMs = config.server.shutdown_drain_ms;
          if (!(await inflight.drained(drainMs))) {
            logger.warn({ in_flight: inflight.size, drain_ms: drainMs }, 'drain deadline passed; aborting');
            inflight.abortAll(
              new ShuttingDownError(`requests still running after ${drainMs} ms were cancelled`),
            );
          }
          await closed;
        } finally {
          clearInterval(closeIdle);
        }
        await tracing.shutdown();
      })();
      return closing;
    },
  };
}

/**
 * Settings the server must not start with: auth asked for but no tokens (it would answer 401 to
 * everyone, or worse, run open), and a public bind address without auth unless explicitly allowed.
 */
export function refuseUnsafeStart(config: LoadedConfig, host: string, secrets: ResolvedSecrets): void {
  if (secrets.problems.length > 0) {
    throw new ConfigRefusedError(config.file, secrets.problems);
  }
  if (!secrets.auth_required && !isLoopback(host) && !config.server.allow_public_without_auth) {
    throw new ConfigRefusedError(config.file, [
      `server.host ${host} is not a loopback address and no server.auth_tokens_env is set: anyone who reaches ` +
        'it could spend your API budget; set auth_tokens_env, or server.allow_public_without_auth: true',
    ]);
  }
}
