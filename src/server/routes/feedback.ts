import type { FastifyPluginAsync } from 'fastify';
import { ApiError } from '../../errors.js';
import { FeedbackRequestSchema } from '../api-schema.js';
import { parseOr400 } from '../request-parsing.js';

/** Outcomes of answered requests (`/v1/feedback`) and what they add up to (`/v1/stats`). */
export const feedbackRoutes: FastifyPluginAsync = async (app) => {
  const { services } = app;
  const { telemetry } = services;

  app.post('/v1/feedback', async (request, reply) => {
    const body = parseOr400(FeedbackRequestSchema, request.body, 'feedback');
    const result = telemetry.recordFeedback(body.request_id, body.success);
    if (result === 'unknown') {
      throw new ApiError('MR_ERR_UNKNOWN_REQUEST', `no answered request ${body.request_id} is remembered`);
    }
    return reply.status(result === 'duplicate' ? 409 : 200).send({ status: result });
  });

  app.get('/v1/stats', async () => ({
    ...telemetry.snapshot(),
    policy_version: services.policies.current().version,
    learning: services.learner?.status() ?? { online: false },
  }));
};
