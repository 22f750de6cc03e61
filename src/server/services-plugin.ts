import fp from 'fastify-plugin';
import type { InflightRequests } from './inflight.js';
import type { RouterServices } from './services.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The router's services (encoder, probes, policies, tier pool, telemetry, state). */
    services: RouterServices;
    /** The requests in progress, with their abort signals (deadline, client gone, shutdown). */
    inflight: InflightRequests;
  }
}

/**
 * The services as a named plugin: decorations every route scope sees, released when the app closes
 * (after the server has stopped accepting and in-flight requests are done or cancelled).
 */
export const servicesPlugin = fp<{ services: RouterServices; inflight: InflightRequests }>(
  async (app, { services, inflight }) => {
    app.decorate('services', services);
    app.decorate('inflight', inflight);
    app.addHook('onClose', async () => {
      await services.close();
    });
  },
  { name: 'mechroute-services', fastify: '5.x' },
);
