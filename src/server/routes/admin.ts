import type { FastifyPluginAsync } from 'fastify';
import { ApiError } from '../../errors.js';

/** The running policy and its rollback (the admin scope guards them: see access.ts). */
export const adminRoutes: FastifyPluginAsync = async (app) => {
  const { services } = app;
  app.get('/admin/policy', async () => {
    const current = services.policies.current();
    return {
      policy_version: current.version,
      policy_kind: current.kind,
      history: services.policies.history().map((p) => p.version),
      calibration: current.calibration
        ? {
            date: current.calibration.date,
            traces_sha256: current.calibration.traces.sha256,
            target: current.calibration.target,
            classes: Object.fromEntries(
              Object.entries(current.calibration.classes).map(([name, c]) => [
                name,
                { quality: c.quality, cost_per_correct: c.cost_per_correct, thresholds: c.thresholds },
              ]),
            ),
          }
        : null,
    };
  });

  app.post('/admin/policy/rollback', async () => {
    const change = services.policies.rollback();
    if (!change.ok) throw new ApiError('MR_ERR_NO_PREVIOUS_POLICY', change.error.message);
    return { policy_version: change.policy.version, previous_version: change.previous_version ?? null };
  });
};
