import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config/config-loader.js';
import type { Encoder } from '../../src/encoder/encoder.js';
import { buildApp } from '../../src/server/app.js';
import { createServices, type RouterServices } from '../../src/server/services.js';
import { createFakeEncoder } from './fake-encoder.js';
import { remoteTierConfig, writeServerConfig } from './server-config.js';

const unreachable = [{ base_url: 'http://127.0.0.1:9/v1' }];

/**
 * The router's fastify app on a stand-in encoder (test/support/fake-encoder.ts), for HTTP tests of what
 * is not about activations: access, limits, error shapes, request validation. Two remote tiers point at
 * a closed loopback port unless `tiers` says otherwise. Use `app.inject()`, or `app.listen()` for raw
 * sockets; close both the app and the services.
 */
export async function buildTestApp(
  dir: string,
  options: {
    server?: Record<string, unknown>;
    tiers?: Record<string, unknown>[];
    env?: NodeJS.ProcessEnv;
    extra?: Record<string, unknown>;
    /** Another stand-in encoder (e.g. a slow one); default: createFakeEncoder(). */
    encoder?: Encoder;
    logger?: FastifyBaseLogger;
  } = {},
): Promise<{ app: FastifyInstance; services: RouterServices }> {
  const file = await writeServerConfig(dir, {
    server: { host: '127.0.0.1', port: 0, ...options.server },
    tiers: options.tiers ?? [
      remoteTierConfig('mixtral-8x7b-instruct', unreachable),
      remoteTierConfig('gpt-4-1106-preview', unreachable),
    ],
    policy: { version: 'test', kind: 'threshold', threshold: {} },
    ...options.extra,
  });
  const config = await loadConfig(file);
  const services = await createServices(config, {
    env: options.env ?? {},
    encoder: options.encoder ?? createFakeEncoder(),
  });
  const { app } = await buildApp(services, options.logger ? { logger: options.logger } : {});
  await app.ready();
  return { app, services };
}
