import type { FastifyPluginAsync } from 'fastify';

/** Public by declaration: liveness, readiness (with why a tier is unavailable) and Prometheus metrics. */
export const healthRoutes: FastifyPluginAsync = async (app) => {
  const { services } = app;
  const { config, telemetry } = services;

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const tiers = services.routeTiers();
    const ready = tiers.some((t) => t.available);
    return reply.status(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'no tier available',
      encoder: {
        model: config.encoder.model,
        variant: services.encoder.info.variant,
        pending: services.encoder.pending,
      },
      policy_version: services.policies.current().version,
      tiers: Object.fromEntries(
        tiers.map((t) => [
          t.id,
          t.available ? { available: true } : { available: false, reason: t.unavailable_reason },
        ]),
      ),
    });
  });

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', telemetry.registry.contentType);
    return telemetry.registry.metrics();
  });
};
