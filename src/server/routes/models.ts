import type { FastifyPluginAsync } from 'fastify';
import { ApiError } from '../../errors.js';
import { MODEL_ROUTER } from '../api-schema.js';

/** `GET /v1/models` and `GET /v1/models/{id}`: the router itself, then every configured tier. */
export const modelRoutes: FastifyPluginAsync = async (app) => {
  const { services } = app;
  const ids = () => [MODEL_ROUTER, ...services.config.tiers.map((t) => t.id)];
  const model = (id: string) => ({ id, object: 'model', created: 0, owned_by: 'mechroute' });

  app.get('/v1/models', async () => ({ object: 'list', data: ids().map(model) }));

  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => {
    const { id } = request.params;
    if (!ids().includes(id)) {
      throw new ApiError(
        'MR_ERR_UNKNOWN_MODEL',
        `unknown model "${id.slice(0, 200)}"; GET /v1/models lists them`,
      );
    }
    return model(id);
  });
};
